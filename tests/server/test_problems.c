/* test_problems.c - every problem of the catalogue: status, type, title, and the body's
 * fields (instance, field, offset), plus the generic hl_status mapping. */
#include "http_status.h"
#include "server.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

Suite *problems_suite(void);

static const struct {
    srv_problem p;
    int status;
    const char *suffix;
} catalogue[] = {
    {SRV_P_MALFORMED_BODY, 400, "malformed-body"},
    {SRV_P_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported-media-type"},
    {SRV_P_INVALID_EMBEDDINGS, 422, "invalid-embeddings"},
    {SRV_P_NON_FINITE_VALUE, 422, "non-finite-value"},
    {SRV_P_INVALID_NPY, 400, "invalid-npy"},
    {SRV_P_INVALID_RAW, 400, "invalid-raw"},
    {SRV_P_SIZE_TOO_SMALL, 422, "size-out-of-range"},
    {SRV_P_SIZE_TOO_LARGE, 413, "size-out-of-range"},
    {SRV_P_BODY_TOO_LARGE, 413, "body-too-large"},
    {SRV_P_INVALID_PARAMETER, 422, "invalid-parameter"},
    {SRV_P_UNKNOWN_MODEL_SUBMIT, 422, "unknown-model"},
    {SRV_P_UNKNOWN_MODEL, 404, "unknown-model"},
    {SRV_P_DIMENSION_MISMATCH, 422, "dimension-mismatch"},
    {SRV_P_JOB_NOT_FOUND, 404, "job-not-found"},
    {SRV_P_JOB_NOT_FINISHED, 409, "job-not-finished"},
    {SRV_P_JOB_NO_RESULT, 409, "job-has-no-result"},
    {SRV_P_CLUSTERING_NOT_FOUND, 404, "clustering-not-found"},
    {SRV_P_IDEMPOTENCY_KEY_REUSED, 422, "idempotency-key-reused"},
    {SRV_P_IDEMPOTENCY_KEY_IN_PROGRESS, 409, "idempotency-key-in-progress"},
    {SRV_P_QUEUE_FULL, 429, "queue-full"},
    {SRV_P_RATE_LIMITED, 429, "rate-limited"},
    {SRV_P_UNAUTHORIZED, 401, "unauthorized"},
    {SRV_P_UNAVAILABLE, 503, "unavailable"},
    {SRV_P_NOT_FOUND, 404, "not-found"},
    {SRV_P_METHOD_NOT_ALLOWED, 405, "method-not-allowed"},
    {SRV_P_BAD_REQUEST, 400, "bad-request"},
    {SRV_P_TIMEOUT, 504, "timeout"},
    {SRV_P_INTERNAL, 500, "internal-error"},
};

START_TEST(catalogue_entries)
{
    ck_assert_int_eq(sizeof(catalogue) / sizeof(catalogue[0]), SRV_P_COUNT_);
    for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
        srv_problem p = catalogue[i].p;
        ck_assert_int_eq(srv_problem_status(p), catalogue[i].status);
        ck_assert_str_eq(srv_problem_suffix(p), catalogue[i].suffix);
        ck_assert(strlen(srv_problem_title(p)) > 0);
        ck_assert(strlen(srv_http_reason(catalogue[i].status)) > 0);
    }
}
END_TEST

/* The body of every problem: RFC 9457 members, instance = the request id. */
START_TEST(problem_bodies)
{
    srv_req req;
    srv_req_init(&req);
    strcpy(req.request_id, "r_test42");
    for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
        srv_resp resp;
        srv_resp_init(&resp);
        ck_assert_int_eq(srv_resp_problem(&resp, &req, catalogue[i].p, NULL, "detail %zu", i),
                         HL_OK);
        ck_assert_int_eq(resp.status, catalogue[i].status);
        ck_assert_str_eq(resp.content_type, "application/problem+json");
        json_error_t je;
        json_t *o = json_loadb(resp.body, resp.len, 0, &je);
        ck_assert_msg(o != NULL, "not JSON: %s", resp.body);
        char type[96];
        snprintf(type, sizeof(type), "/problems/%s", catalogue[i].suffix);
        ck_assert_str_eq(json_string_value(json_object_get(o, "type")), type);
        ck_assert_str_eq(json_string_value(json_object_get(o, "title")),
                         srv_problem_title(catalogue[i].p));
        ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), catalogue[i].status);
        char detail[32];
        snprintf(detail, sizeof(detail), "detail %zu", i);
        ck_assert_str_eq(json_string_value(json_object_get(o, "detail")), detail);
        ck_assert_str_eq(json_string_value(json_object_get(o, "instance")), "r_test42");
        ck_assert_ptr_null(json_object_get(o, "field"));
        int want_retry = catalogue[i].status == 429 || catalogue[i].status == 503;
        ck_assert_int_eq(srv_resp_get_header(&resp, "Retry-After") != NULL, want_retry);
        json_decref(o);
        srv_resp_clear(&resp);
    }
}
END_TEST

START_TEST(field_and_offset)
{
    srv_req req;
    srv_req_init(&req);
    strcpy(req.request_id, "r_1");
    hl_error e;
    hl_error_clear(&e);
    hl_error_set_cell(&e, HL_NUMERIC, "embeddings", 3, 7, "row 3 column 7 is NaN");
    srv_resp resp;
    srv_resp_init(&resp);
    srv_resp_problem(&resp, &req, SRV_P_NON_FINITE_VALUE, &e, "%s", e.msg);
    json_t *o = json_loadb(resp.body, resp.len, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "field")), "embeddings");
    json_t *off = json_object_get(o, "offset");
    ck_assert_int_eq(json_integer_value(json_object_get(off, "row")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(off, "column")), 7);
    json_decref(o);
    srv_resp_clear(&resp);
    hl_error_clear(&e);
    hl_error_set_at(&e, HL_FORMAT, "body", 12, "bad \"quote\"\n");
    srv_resp_problem(&resp, &req, SRV_P_MALFORMED_BODY, &e, "%s", e.msg);
    o = json_loadb(resp.body, resp.len, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "offset")), 12);
    ck_assert_str_eq(json_string_value(json_object_get(o, "detail")), "bad \"quote\"\n");
    json_decref(o);
    srv_resp_clear(&resp);
}
END_TEST

START_TEST(status_mapping)
{
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_INVAL)), 400);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_FORMAT)), 400);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_RANGE)), 422);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_VERSION)), 422);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_NUMERIC)), 422);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_NOTFOUND)), 404);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_BUSY)), 429);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_NOMEM)), 503);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_UNAVAILABLE)), 503);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_TIMEOUT)), 504);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_IO)), 500);
    ck_assert_int_eq(srv_problem_status(srv_problem_for_status(HL_INTERNAL)), 500);
}
END_TEST

Suite *problems_suite(void)
{
    Suite *s = suite_create("problems");
    TCase *tc = tcase_create("problems");
    tcase_add_test(tc, catalogue_entries);
    tcase_add_test(tc, problem_bodies);
    tcase_add_test(tc, field_and_offset);
    tcase_add_test(tc, status_mapping);
    suite_add_tcase(s, tc);
    return s;
}
