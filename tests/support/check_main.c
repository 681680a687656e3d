/* check_main.c - runs one check suite (HL_SUITE_FN) and exits non-zero on any failure. */
#include <check.h>
#include <stdlib.h>

Suite *HL_SUITE_FN(void);

int main(void)
{
    SRunner *sr = srunner_create(HL_SUITE_FN());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
