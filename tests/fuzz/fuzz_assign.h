/*
 * fuzz_assign.h - the assign both state fuzz targets run on a decoded state: three new points
 * (copies of the first and last stored points and one far away) through hl_assign_run.
 */
#ifndef HL_FUZZ_ASSIGN_H
#define HL_FUZZ_ASSIGN_H

#include "hl/assign.h"

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

/* Runs the assign on model-free states of d <= 64 (others: returns 0 and does nothing).
 * Returns 1 with *a set when it succeeded, 0 otherwise (errors checked). Free *a after. */
static inline int fuzz_assign_three(hl_assign_state *s, hl_assignment **a)
{
    *a = NULL;
    if (s->has_model || s->d > 64)
        return 0;
    size_t d = s->d;
    float *y = calloc(3 * d, sizeof(float));
    FUZZ_CHECK(y != NULL);
    memcpy(y, s->x, d * sizeof(float));
    memcpy(y + d, s->x + (s->n - 1) * d, d * sizeof(float));
    y[2 * d] = -1.0f;
    hl_assign_params ap;
    hl_assign_params_default(&ap);
    ap.new_clusters = s->n % 2 ? HL_NEW_OPEN : HL_NEW_UNASSIGNED;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_assign_run(s, NULL, y, 3, d, &ap, a, &e);
    fuzz_check_error(st, &e);
    free(y);
    return st == HL_OK;
}

#endif /* HL_FUZZ_ASSIGN_H */
