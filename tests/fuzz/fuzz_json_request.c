/*
 * fuzz_json_request.c - the JSON request decoder, with jansson as a differential oracle.
 *
 * The input is the body (limits: 64 points, 32 dimensions, at least 2 points). Besides memory
 * safety and the hl_error invariants it checks:
 *   - a failure leaves the request empty, and a byte offset never points past the body;
 *   - jansson (json_loadb with JSON_REJECT_DUPLICATES) is run on the same bytes. When it
 *     refuses them for any reason but a number out of its own range (a huge integer is valid
 *     JSON that jansson alone refuses), we must not succeed. When it accepts an object whose
 *     "embeddings" is an array, we must not call the body malformed (HL_FORMAT), unless the
 *     input holds a NUL byte: jansson 2.14 skips a NUL that follows a number ("[6\0]" loads
 *     as [6]), which RFC 8259 does not allow and we refuse;
 *   - when jansson accepts an object holding only "embeddings", an array of 2..64 equally long
 *     arrays of 1..32 numbers within float range, we must succeed;
 *   - whatever we decode agrees with jansson's tree: shape, every value (within one float
 *     ulp of jansson's double rounded to float, which can differ from the correctly rounded
 *     float only by double rounding), ids, labels, model and which params are set.
 */
#include "hl/json_codec.h"

#include "fuzz.h"

#include <float.h>
#include <jansson.h>
#include <math.h>

static const hl_request_limits lim = {64, 32, 2};

static int close_float(float ours, double ref)
{
    float r = (float)ref;
    return ours == r || ours == nextafterf(r, INFINITY) || ours == nextafterf(r, -INFINITY);
}

/* Non-zero when the tree is {"embeddings": [[numbers], ...]} that must decode. */
static int plainly_valid(const json_t *j)
{
    const json_t *emb = json_object_get(j, "embeddings");
    if (json_object_size(j) != 1 || !json_is_array(emb))
        return 0;
    size_t n = json_array_size(emb), d = 0;
    if (n < lim.min_points || n > lim.max_points)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *row = json_array_get(emb, i);
        if (!json_is_array(row) || json_array_size(row) == 0 || json_array_size(row) > lim.max_dim)
            return 0;
        if (i == 0)
            d = json_array_size(row);
        if (json_array_size(row) != d)
            return 0;
        for (size_t k = 0; k < d; k++) {
            const json_t *v = json_array_get(row, k);
            if (!json_is_number(v) || fabs(json_number_value(v)) > 3.4e38)
                return 0;
        }
    }
    return 1;
}

static int agree(const json_t *j, const hl_cluster_request *r)
{
    const json_t *emb = json_object_get(j, "embeddings");
    FUZZ_CHECK(json_array_size(emb) == r->x.rows);
    for (size_t i = 0; i < r->x.rows; i++) {
        const json_t *row = json_array_get(emb, i);
        FUZZ_CHECK(json_array_size(row) == r->x.cols);
        for (size_t k = 0; k < r->x.cols; k++) {
            double ref = json_number_value(json_array_get(row, k));
            FUZZ_CHECK(close_float(r->x.data[i * r->x.cols + k], ref));
        }
    }
    const json_t *ids = json_object_get(j, "ids");
    FUZZ_CHECK((ids != NULL) == (r->ids != NULL));
    for (size_t i = 0; ids != NULL && i < r->x.rows; i++)
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(ids, i)), r->ids[i]) == 0);
    const json_t *labels = json_object_get(j, "labels");
    FUZZ_CHECK((labels != NULL) == (r->labels != NULL));
    for (size_t i = 0; labels != NULL && i < r->x.rows; i++)
        FUZZ_CHECK(json_integer_value(json_array_get(labels, i)) == r->labels[i]);
    const json_t *model = json_object_get(j, "model");
    FUZZ_CHECK(strcmp(model != NULL ? json_string_value(model) : "", r->model) == 0);
    const json_t *p = json_object_get(j, "params");
    const hl_request_params *q = &r->params;
    size_t set = (size_t)(q->has_k + q->has_tau + q->has_max_levels + q->has_min_cluster_size +
                          q->has_knn + q->has_early_stop + q->has_new_clusters);
    FUZZ_CHECK(set == (p != NULL ? json_object_size(p) : 0));
    FUZZ_CHECK(!q->has_k ||
               (q->k >= 2 && q->k <= 1024 && json_integer_value(json_object_get(p, "k")) == q->k));
    FUZZ_CHECK(!q->has_tau || (q->tau >= 0.0f && q->tau <= 1.0f));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_json_request_decode(data, size, &lim, &r, &e);
    fuzz_check_error(st, &e);
    fuzz_check_printable(e.msg);
    fuzz_check_printable(e.field);
    FUZZ_CHECK(st == HL_OK || st == HL_FORMAT || st == HL_RANGE || st == HL_NUMERIC ||
               st == HL_INVAL);
    if (st != HL_OK) {
        FUZZ_CHECK(r.x.data == NULL && r.ids == NULL && r.labels == NULL && r.model[0] == '\0');
        FUZZ_CHECK(!e.has_offset || e.has_col || e.offset <= size);
        FUZZ_CHECK(e.field[0] != '\0');
    } else {
        FUZZ_CHECK(r.x.rows >= lim.min_points && r.x.rows <= lim.max_points);
        FUZZ_CHECK(r.x.cols >= 1 && r.x.cols <= lim.max_dim);
        for (size_t i = 0; i < r.x.rows * r.x.cols; i++)
            FUZZ_CHECK(isfinite(r.x.data[i]));
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        enum json_error_code c = json_error_code(&je);
        if (c != json_error_numeric_overflow && c != json_error_out_of_memory)
            FUZZ_CHECK(st != HL_OK);
    } else if (size > 0 && memchr(data, 0, size) != NULL) {
        FUZZ_CHECK(st != HL_OK || agree(j, &r) == 0); /* what we decode, jansson has too */
        json_decref(j);
    } else {
        if (json_is_object(j) && json_is_array(json_object_get(j, "embeddings")))
            FUZZ_CHECK(st != HL_FORMAT);
        if (plainly_valid(j))
            FUZZ_CHECK(st == HL_OK);
        if (st == HL_OK)
            agree(j, &r);
        json_decref(j);
    }
    hl_cluster_request_free(&r);
    return 0;
}
