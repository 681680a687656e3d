/*
 * test_json_codec.c - the JSON request decoder and the query-string decoder. The case folders
 * (tests/proto/cases/{valid,invalid}/json_*) hold bodies written by Python's json module and
 * are walked by test_cases.c; here are the properties that need code: every error with its
 * status, field and position, the limits and failing fast, truncation, the float parser
 * against strtof() on a few million inputs, and query strings.
 */
#include "hl/json_codec.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes s (without its NUL: the copy is exactly strlen(s) bytes, so ASan sees overreads). */
static hl_status decode(const char *s, const hl_request_limits *lim, hl_cluster_request *r,
                        hl_error *e)
{
    size_t n = strlen(s);
    char *copy = malloc(n > 0 ? n : 1);
    memcpy(copy, s, n);
    hl_error_clear(e);
    hl_status st = hl_json_request_decode(copy, n, lim, r, e);
    free(copy);
    return st;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ------------------------------------------------------------------ valid bodies */

START_TEST(test_valid_everything)
{
    const char *b = " \t\r\n{ \"ids\" : [ \"a\\u00e9\" ,\"\\ud83d\\ude00\", \"\\\"q\\\\\" ] ,\n"
                    "\"embeddings\"\t:\r[ [ 1 , -2.5e-1 , 0 ] , [ -0 ,3E2, 1.5 ]\n,[7,8,9]] , "
                    "\"labels\" : [ -1 , 2147483647 , -2147483648 ] , \"model\" : \"uni_v1.2-x\" "
                    ", \"params\" : { \"k\" : 1024 , \"tau\" : 1 , \"max_levels\" : 64 , "
                    "\"min_cluster_size\" : 2147483647 , \"knn\" : \"ivf\" , \"early_stop\" : "
                    "false , \"new_clusters\" : \"unassigned\" } } \n";
    hl_cluster_request r;
    hl_error e;
    ck_assert_msg(decode(b, NULL, &r, &e) == HL_OK, "%s", e.msg);
    ck_assert_uint_eq(r.x.rows, 3);
    ck_assert_uint_eq(r.x.cols, 3);
    ck_assert_ptr_eq(r.x.data, r.x.owned);
    const float want[9] = {1, -0.25f, 0, -0.0f, 300, 1.5f, 7, 8, 9};
    for (int i = 0; i < 9; i++)
        ck_assert_uint_eq(bits(r.x.data[i]), bits(want[i]));
    ck_assert_str_eq(r.ids[0], "a\xc3\xa9");
    ck_assert_str_eq(r.ids[1], "\xf0\x9f\x98\x80");
    ck_assert_str_eq(r.ids[2], "\"q\\");
    ck_assert_int_eq(r.labels[0], -1);
    ck_assert_int_eq(r.labels[1], INT32_MAX);
    ck_assert_int_eq(r.labels[2], INT32_MIN);
    ck_assert_str_eq(r.model, "uni_v1.2-x");
    const hl_request_params *p = &r.params;
    ck_assert(p->has_k && p->k == 1024 && p->has_tau && p->tau == 1.0f);
    ck_assert(p->has_max_levels && p->max_levels == 64);
    ck_assert(p->has_min_cluster_size && p->min_cluster_size == INT32_MAX);
    ck_assert(p->has_knn && strcmp(p->knn, "ivf") == 0);
    ck_assert(p->has_early_stop && p->early_stop == 0);
    ck_assert(p->has_new_clusters && strcmp(p->new_clusters, "unassigned") == 0);
    hl_cluster_request_free(&r);
    ck_assert_ptr_null(r.x.data);
    ck_assert_ptr_null(r.ids);
    hl_cluster_request_free(&r); /* freeing twice is harmless */
}
END_TEST

START_TEST(test_valid_minimal)
{
    hl_cluster_request r;
    hl_error e;
    ck_assert_int_eq(decode("{\"embeddings\":[[1],[2]]}", NULL, &r, &e), HL_OK);
    ck_assert_uint_eq(r.x.rows, 2);
    ck_assert_uint_eq(r.x.cols, 1);
    ck_assert_ptr_null(r.ids);
    ck_assert_ptr_null(r.labels);
    ck_assert_str_eq(r.model, "");
    ck_assert(!r.params.has_k && !r.params.has_tau && !r.params.has_max_levels &&
              !r.params.has_min_cluster_size && !r.params.has_knn && !r.params.has_early_stop &&
              !r.params.has_new_clusters);
    ck_assert_int_eq(e.code, HL_OK);
    hl_cluster_request_free(&r);
    /* empty params and ids at the 256-byte limit; an empty id */
    char b[1024], id[257];
    memset(id, 'x', 256);
    id[256] = '\0';
    snprintf(b, sizeof(b), "{\"params\":{},\"ids\":[\"%s\",\"\"],\"embeddings\":[[1],[2]]}", id);
    ck_assert_int_eq(decode(b, NULL, &r, &e), HL_OK);
    ck_assert_uint_eq(strlen(r.ids[0]), 256);
    ck_assert_str_eq(r.ids[1], "");
    ck_assert(!r.params.has_k);
    hl_cluster_request_free(&r);
}
END_TEST

/* The body need not be NUL-terminated: bytes past len are never read. */
START_TEST(test_length_not_nul)
{
    const char *b = "{\"embeddings\":[[1,2],[3,4]]}";
    size_t n = strlen(b);
    char *buf = malloc(n + 8);
    memcpy(buf, b, n);
    memcpy(buf + n, "[[5,6]]}", 8);
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_json_request_decode(buf, n, NULL, &r, &e), HL_OK);
    ck_assert_uint_eq(r.x.rows, 2);
    hl_cluster_request_free(&r);
    /* a number cut by len is the number up to len */
    ck_assert_int_eq(hl_json_request_decode("{\"embeddings\":[[1,2],[3,4]]}", 26, NULL, &r, &e),
                     HL_FORMAT);
    ck_assert_int_eq(hl_json_request_decode(NULL, 0, NULL, &r, &e), HL_FORMAT);
    free(buf);
}
END_TEST

/* ------------------------------------------------------------------ errors */

typedef struct err_case {
    const char *body;
    size_t max_points, max_dim, min_points; /* 0 0 0: the defaults */
    hl_status status;
    const char *field;
    char pos;       /* 'b' byte offset, 'c' cell, 'n' none */
    const char *at; /* 'b': the offset is that of the first `at` after byte 0 ("" = 0 or len) */
    size_t a, b;    /* 'b' with at NULL: offset a; 'c': (a, b) */
    const char *msg;
} err_case;

#define E2 "{\"embeddings\": [[1, 2], [3, 4]]"

static const err_case err_cases[] = {
    /* malformed JSON, not an object, trailing data */
    {"", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 0, 0, "empty"},
    {"  \n", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 3, 0, "unexpected end"},
    {"[[1,2],[3,4]]", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 0, 0, "not a JSON object"},
    {"\"embeddings\"", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 0, 0, "not a JSON object"},
    {"{\"embeddings\": [[1, 2], [3, 4]]", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 31, 0,
     "unexpected end"},
    {E2 "} x", 0, 0, 0, HL_FORMAT, "body", 'b', "x", 0, 0, "trailing data"},
    {E2 "}}", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 32, 0, "trailing data"},
    {E2 ",}", 0, 0, 0, HL_FORMAT, "body", 'b', "}", 0, 0, "expected a string key"},
    {E2 " \"model\": \"m\"}", 0, 0, 0, HL_FORMAT, "body", 'b', "\"model", 0, 0, "expected ','"},
    {"{'embeddings': [[1]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "'", 0, 0, "string key"},
    {"{\"embeddings\" [[1]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "[", 0, 0, "expected ':'"},
    {"{\"embeddings", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 12, 0, "unterminated string"},
    {"{\"embeddings\": [[1, 2], [3, 4]] \"x\"}", 0, 0, 0, HL_FORMAT, "body", 'b', "\"x", 0, 0,
     "expected ','"},
    {"{\"embeddings\": [[1, 2] [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', " [3", 1, 0,
     "after a row"},
    {"{\"embeddings\": [[1, 2], [3, 4],]}", 0, 0, 0, HL_FORMAT, "body", 'b', ",]", 1, 0,
     "expected a row"},
    {"{\"embeddings\": [[1, 2,], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "]", 0, 0,
     "expected a number"},
    {"{\"embeddings\": [[1, 2], [3, 4}}", 0, 0, 0, HL_FORMAT, "body", 'b', "}", 0, 0,
     "after a number"},
    /* numbers that are not JSON */
    {"{\"embeddings\": [[1, 02], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "2]", 0, 0,
     "after a number"},
    {"{\"embeddings\": [[1, 2.], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "]", 0, 0,
     "invalid number"},
    {"{\"embeddings\": [[1, .5], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', ".", 0, 0,
     "expected a number"},
    {"{\"embeddings\": [[1, +5], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "+", 0, 0,
     "expected a number"},
    {"{\"embeddings\": [[1, 5e], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "]", 0, 0,
     "invalid number"},
    {"{\"embeddings\": [[1, 5e+], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "]", 0, 0,
     "invalid number"},
    {"{\"embeddings\": [[1, -], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "]", 0, 0,
     "expected a number"},
    {"{\"embeddings\": [[1, 0x10], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "x", 0, 0,
     "after a number"},
    {"{\"embeddings\": [[1, tru], [3, 4]]}", 0, 0, 0, HL_FORMAT, "body", 'b', "tru", 0, 0,
     "expected a number"},
    /* "embeddings" missing or not an array */
    {"{}", 0, 0, 0, HL_FORMAT, "embeddings", 'n', NULL, 0, 0, "no \"embeddings\""},
    {"{\"model\": \"m\"}", 0, 0, 0, HL_FORMAT, "embeddings", 'n', NULL, 0, 0, "no \"embed"},
    {"{\"embeddings\": 5}", 0, 0, 0, HL_FORMAT, "embeddings", 'b', "5", 0, 0, "must be an array"},
    {"{\"embeddings\": \"x\"}", 0, 0, 0, HL_FORMAT, "embeddings", 'b', "\"x", 0, 0,
     "must be an array"},
    {"{\"embeddings\": null}", 0, 0, 0, HL_FORMAT, "embeddings", 'b', "null", 0, 0,
     "must be an array"},
    {"{\"embeddings\": x}", 0, 0, 0, HL_FORMAT, "body", 'b', "x", 0, 0, "expected a value"},
    /* duplicate top-level keys, also when spelled with escapes */
    {E2 ", \"embeddings\": [[1]]}", 0, 0, 0, HL_FORMAT, "embeddings", 'b', "\"embeddings\": [[1]",
     0, 0, "duplicate key"},
    {E2 ", \"model\": \"a\", \"mod\\u0065l\": \"b\"}", 0, 0, 0, HL_FORMAT, "model", 'b', "\"mod\\",
     0, 0, "duplicate key \"model\""},
    /* ragged rows, non-numbers, empty rows */
    {"{\"embeddings\": [[1, 2, 3], [4, 5]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 2,
     "has 2 values, row 0 has 3"},
    {"{\"embeddings\": [[1, 2], [3, 4, 5]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 2,
     "more than 2 values"},
    {"{\"embeddings\": [[1, 2], [3, 4, x]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 2,
     "more than 2 values"},
    {"{\"embeddings\": [[], [1]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 0, 0, "empty row"},
    {"{\"embeddings\": [[1], [ ]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 0, "empty row"},
    {"{\"embeddings\": [[1, \"2\"], [3, 4]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 0, 1,
     "is a string"},
    {"{\"embeddings\": [[1, 2], [[3], 4]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 0,
     "is an array"},
    {"{\"embeddings\": [[1, 2], [3, {}]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 1,
     "is an object"},
    {"{\"embeddings\": [[true, 2], [3, 4]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 0, 0,
     "is true"},
    {"{\"embeddings\": [[1, false], [3, 4]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 0, 1,
     "is false"},
    {"{\"embeddings\": [[1, 2], [null, 4]]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 0,
     "is null"},
    {"{\"embeddings\": [1, 2]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 0, 0,
     "embeddings[0] is not an array"},
    {"{\"embeddings\": [[1, 2], \"x\"]}", 0, 0, 0, HL_RANGE, "embeddings", 'c', NULL, 1, 0,
     "embeddings[1] is not an array"},
    /* NaN, Infinity, overflow */
    {"{\"embeddings\": [[1, 2], [3, NaN]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 1, 1,
     "not finite"},
    {"{\"embeddings\": [[Infinity, 2], [3, 4]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 0,
     0, "not finite"},
    {"{\"embeddings\": [[1, -Infinity], [3, 4]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 0,
     1, "not finite"},
    {"{\"embeddings\": [[1, 2], [-nan, 4]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 1, 0,
     "not finite"},
    {"{\"embeddings\": [[1, 2], [3, inf]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 1, 1,
     "not finite"},
    {"{\"embeddings\": [[1, 2], [3, 1e39]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 1, 1,
     "overflows float32"},
    {"{\"embeddings\": [[-3.4028236e38, 2], [3, 4]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL,
     0, 0, "overflows float32"},
    {"{\"embeddings\": [[1, 2], [3, 1e99999999999999999999]]}", 0, 0, 0, HL_NUMERIC, "embeddings",
     'c', NULL, 1, 1, "overflows float32"},
    {"{\"embeddings\": [[1, 2], [3, 1e400]]}", 0, 0, 0, HL_NUMERIC, "embeddings", 'c', NULL, 1, 1,
     "overflows float32"},
    /* ids and labels */
    {E2 ", \"ids\": [\"a\"]}", 0, 0, 0, HL_RANGE, "ids", 'b', "[\"a", 0, 0, "1 ids for 2"},
    {"{\"ids\": [\"a\", \"b\", \"c\"], \"embeddings\": [[1], [2]]}", 0, 0, 0, HL_RANGE, "ids", 'b',
     "[", 0, 0, "3 ids for 2"},
    {E2 ", \"ids\": [\"a\", 1]}", 0, 0, 0, HL_RANGE, "ids", 'c', NULL, 1, 0,
     "ids[1] is not a string"},
    {E2 ", \"ids\": \"ab\"}", 0, 0, 0, HL_RANGE, "ids", 'b', "\"ab", 0, 0, "array of strings"},
    {E2 ", \"ids\": [\"a\", \"b\\u0000\"]}", 0, 0, 0, HL_RANGE, "ids", 'b', "[\"a", 15, 0,
     "ids: \\u0000"},
    {E2 ", \"ids\": [\"a\", \"b\\x\"]}", 0, 0, 0, HL_FORMAT, "body", 'b', "[\"a", 10, 0,
     "malformed JSON"},
    {E2 ", \"ids\": [\"a\", \"\x01\"]}", 0, 0, 0, HL_FORMAT, "body", 'b', "[\"a", 7, 0,
     "malformed JSON"},
    {E2 ", \"ids\": [\"a\", \"\xc3\x28\"]}", 0, 0, 0, HL_FORMAT, "body", 'b', "[\"a", 7, 0,
     "malformed JSON"},
    {E2 ", \"labels\": [1, 2, 3]}", 0, 0, 0, HL_RANGE, "labels", 'b', "[1, 2, 3", 0, 0,
     "3 labels for 2"},
    {E2 ", \"labels\": [1, 2.5]}", 0, 0, 0, HL_RANGE, "labels", 'c', NULL, 1, 0,
     "labels[1] is not an integer"},
    {E2 ", \"labels\": [-2147483649, 2]}", 0, 0, 0, HL_RANGE, "labels", 'c', NULL, 0, 0, "int32"},
    {E2 ", \"labels\": [1, 99999999999999999999]}", 0, 0, 0, HL_RANGE, "labels", 'b', "[1, 9", 24,
     0, "too big integer"},
    {E2 ", \"labels\": {\"a\": 1}}", 0, 0, 0, HL_RANGE, "labels", 'b', "{\"a", 0, 0,
     "array of integers"},
    /* model and params */
    {E2 ", \"model\": \"\"}", 0, 0, 0, HL_INVAL, "model", 'b', "\"\"", 0, 0, "model must be"},
    {E2 ", \"model\": \"a/b\"}", 0, 0, 0, HL_INVAL, "model", 'b', "\"a/b", 0, 0, "model must be"},
    {E2 ", \"model\": 3}", 0, 0, 0, HL_INVAL, "model", 'b', "3}", 0, 0, "model must be"},
    {E2 ", \"model\": \"ab123456789012345678901234567890123456789012345678901234567890123\"}", 0, 0,
     0, HL_INVAL, "model", 'b', "\"ab", 0, 0, "model must be"},
    {E2 ", \"params\": [1]}", 0, 0, 0, HL_INVAL, "params", 'b', "[1]", 0, 0, "must be an object"},
    {E2 ", \"params\": {\"kk\": 3}}", 0, 0, 0, HL_INVAL, "params/kk", 'b', "{\"kk", 0, 0,
     "unknown parameter"},
    {E2 ", \"params\": {\"k\": 3, \"k\": 4}}", 0, 0, 0, HL_FORMAT, "body", 'b', "{\"k", 12, 0,
     "duplicate object key"},
    {E2 ", \"params\": {\"k\": \"10\"}}", 0, 0, 0, HL_INVAL, "params/k", 'b', "{\"k", 0, 0,
     "must be an integer"},
    {E2 ", \"params\": {\"k\": 10.0}}", 0, 0, 0, HL_INVAL, "params/k", 'b', "{\"k", 0, 0,
     "must be an integer"},
    {E2 ", \"params\": {\"k\": 1}}", 0, 0, 0, HL_INVAL, "params/k", 'b', "{\"k", 0, 0,
     "out of range (2..1024)"},
    {E2 ", \"params\": {\"k\": 1025}}", 0, 0, 0, HL_INVAL, "params/k", 'b', "{\"k", 0, 0,
     "out of range"},
    {E2 ", \"params\": {\"k\": 99999999999999999999}}", 0, 0, 0, HL_INVAL, "params", 'b', "{\"k",
     26, 0, "too big integer"},
    {E2 ", \"params\": {\"tau\": -0.01}}", 0, 0, 0, HL_INVAL, "params/tau", 'b', "{\"t", 0, 0,
     "out of range"},
    {E2 ", \"params\": {\"tau\": 2}}", 0, 0, 0, HL_INVAL, "params/tau", 'b', "{\"t", 0, 0,
     "out of range"},
    {E2 ", \"params\": {\"tau\": true}}", 0, 0, 0, HL_INVAL, "params/tau", 'b', "{\"t", 0, 0,
     "must be a number"},
    {E2 ", \"params\": {\"max_levels\": 0}}", 0, 0, 0, HL_INVAL, "params/max_levels", 'b', "{\"m",
     0, 0, "out of range (1..64)"},
    {E2 ", \"params\": {\"max_levels\": 65}}", 0, 0, 0, HL_INVAL, "params/max_levels", 'b', "{\"m",
     0, 0, "out of range"},
    {E2 ", \"params\": {\"min_cluster_size\": 0}}", 0, 0, 0, HL_INVAL, "params/min_cluster_size",
     'b', "{\"m", 0, 0, "out of range"},
    {E2 ", \"params\": {\"min_cluster_size\": 2147483648}}", 0, 0, 0, HL_INVAL,
     "params/min_cluster_size", 'b', "{\"m", 0, 0, "out of range"},
    {E2 ", \"params\": {\"knn\": \"annoy\"}}", 0, 0, 0, HL_INVAL, "params/knn", 'b', "{\"k", 0, 0,
     "must be one of"},
    {E2 ", \"params\": {\"knn\": 1}}", 0, 0, 0, HL_INVAL, "params/knn", 'b', "{\"k", 0, 0,
     "must be a string"},
    {E2 ", \"params\": {\"early_stop\": 1}}", 0, 0, 0, HL_INVAL, "params/early_stop", 'b', "{\"e",
     0, 0, "must be a boolean"},
    {E2 ", \"params\": {\"new_clusters\": \"closed\"}}", 0, 0, 0, HL_INVAL, "params/new_clusters",
     'b', "{\"n", 0, 0, "must be one of"},
    {E2 ", \"params\": {\"new_clusters\": null}}", 0, 0, 0, HL_INVAL, "params/new_clusters", 'b',
     "{\"n", 0, 0, "must be a string"},
    {E2 ", \"params\": {\"k\": 3,}}", 0, 0, 0, HL_FORMAT, "body", 'b', "{\"k", 9, 0,
     "malformed JSON"},
    {E2 ", \"params\": {\"k\": 3}", 0, 0, 0, HL_FORMAT, "body", 'b', NULL, 51, 0, "unexpected end"},
    /* unknown top-level keys */
    {E2 ", \"modle\": \"m\"}", 0, 0, 0, HL_INVAL, "modle", 'b', "\"modle", 0, 0,
     "unknown key \"modle\""},
    {"{\"\\u00e9\": 1, \"embeddings\": [[1], [2]]}", 0, 0, 0, HL_INVAL, "\xc3\xa9", 'b', "\"", 0, 0,
     "unknown key"},
    {E2 ", \"\": 1}", 0, 0, 0, HL_INVAL, "\"\"", 'b', "\"\"", 0, 0, "unknown key \"\""},
    {E2 ", \"a\\nb\\u0001\\u00e9\": 1}", 0, 0, 0, HL_INVAL, "a?b?\xc3\xa9", 'b', "\"a\\n", 0, 0,
     "unknown key \"a?b?\xc3\xa9\""},
    {E2 ", \"params\": {\"\\t\": 1}}", 0, 0, 0, HL_INVAL, "params/?", 'b', "{", 0, 0, "params/?"},
    {E2 ", \"\xff\": 1}", 0, 0, 0, HL_FORMAT, "body", 'b', "\"\xff", 1, 0, "malformed JSON"},
    {E2 ", \"a\\q\": 1}", 0, 0, 0, HL_FORMAT, "body", 'b', "\"a\\", 4, 0, "malformed JSON"},
    {E2 ", \"a\\u0000\": 1}", 0, 0, 0, HL_INVAL, "body", 'b', "\"a\\", 9, 0, "\\u0000"},
    /* limits: N and D */
    {"{\"embeddings\": [[1, 2]]}", 0, 0, 0, HL_INVAL, "n", 'n', NULL, 0, 0, "1 points, at least 2"},
    {"{\"embeddings\": []}", 0, 0, 0, HL_INVAL, "n", 'n', NULL, 0, 0, "0 points"},
    {"{\"embeddings\": [[1], [2], [3], [4]]}", 3, 8, 2, HL_INVAL, "n", 'c', NULL, 3, 0,
     "more than 3 points"},
    {"{\"embeddings\": [[1], [2], [3], [4", 3, 8, 2, HL_INVAL, "n", 'c', NULL, 3, 0,
     "more than 3 points"},
    {"{\"embeddings\": [[1], [2], [3]]}", 3, 8, 4, HL_INVAL, "n", 'n', NULL, 0, 0,
     "3 points, at least 4"},
    {"{\"embeddings\": [[1, 2, 3], [4, 5, 6]]}", 3, 2, 2, HL_INVAL, "dim", 'c', NULL, 0, 2,
     "exceeds the limit of 2"},
    {"{\"embeddings\": [[1, 2, 3 garbage", 3, 2, 2, HL_INVAL, "dim", 'c', NULL, 0, 2,
     "exceeds the limit of 2"},
};

START_TEST(test_errors)
{
    const err_case *c = &err_cases[_i];
    hl_request_limits lim = {c->max_points, c->max_dim, c->min_points};
    hl_cluster_request r;
    hl_error e;
    hl_status st = decode(c->body, c->max_points != 0 ? &lim : NULL, &r, &e);
    ck_assert_msg(st == c->status, "case %d (%s): %s, want %s (%s)", _i, c->body,
                  hl_status_name(st), hl_status_name(c->status), e.msg);
    ck_assert_int_eq(e.code, st);
    ck_assert_msg(strcmp(e.field, c->field) == 0, "case %d (%s): field \"%s\", want \"%s\"", _i,
                  c->body, e.field, c->field);
    ck_assert_msg(strstr(e.msg, c->msg) != NULL, "case %d (%s): message \"%s\" lacks \"%s\"", _i,
                  c->body, e.msg, c->msg);
    ck_assert(strchr(e.msg, '\n') == NULL);
    if (c->pos == 'n') {
        ck_assert_msg(!e.has_offset && !e.has_col, "case %d: has a position", _i);
    } else if (c->pos == 'c') {
        ck_assert_msg(e.has_offset && e.has_col && e.offset == c->a && e.col == c->b,
                      "case %d (%s): cell (%zu, %zu) has %d/%d, want (%zu, %zu)", _i, c->body,
                      e.offset, e.col, e.has_offset, e.has_col, c->a, c->b);
    } else {
        size_t want = c->a;
        if (c->at != NULL) {
            const char *f = strstr(c->body + 1, c->at);
            ck_assert_ptr_nonnull(f);
            want += (size_t)(f - c->body);
        }
        ck_assert_msg(e.has_offset && !e.has_col && e.offset == want,
                      "case %d (%s): offset %zu (has %d/%d), want %zu", _i, c->body, e.offset,
                      e.has_offset, e.has_col, want);
    }
    /* nothing to free after an error */
    ck_assert(r.x.data == NULL && r.x.owned == NULL && r.x.rows == 0 && r.ids == NULL &&
              r.labels == NULL && r.model[0] == '\0' && !r.params.has_k);
}
END_TEST

/* Every proper prefix of a valid body is malformed (or already too small), never valid. */
START_TEST(test_prefixes)
{
    const char *b = "{\"ids\": [\"a\", \"b\"], \"embeddings\": [[1.5e3, -2], [0.25, 4]], "
                    "\"labels\": [1, 2], \"model\": \"m\", \"params\": {\"k\": 3}}";
    size_t n = strlen(b);
    for (size_t k = 0; k < n; k++) {
        char *p = malloc(k > 0 ? k : 1);
        memcpy(p, b, k);
        hl_cluster_request r;
        hl_error e;
        hl_error_clear(&e);
        hl_status st = hl_json_request_decode(p, k, NULL, &r, &e);
        ck_assert_msg(st == HL_FORMAT, "prefix of %zu bytes: %s (%s)", k, hl_status_name(st),
                      e.msg);
        ck_assert_msg(e.has_offset && e.offset <= k, "prefix %zu: offset %zu", k, e.offset);
        free(p);
    }
}
END_TEST

/* The decoder stops at the first row past max_points, whatever follows. */
START_TEST(test_fail_fast)
{
    size_t rows = 20000, n = 0;
    char *b = malloc(rows * 8 + 64);
    n += (size_t)sprintf(b, "{\"embeddings\": [");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)sprintf(b + n, "[%zu],", i % 10);
    memcpy(b + n, "\x01 not JSON", 10); /* the rest is garbage */
    n += 10;
    hl_request_limits lim = {1000, 16, 2};
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_json_request_decode(b, n, &lim, &r, &e), HL_INVAL);
    ck_assert_str_eq(e.field, "n");
    ck_assert(e.has_col && e.offset == 1000);
    lim.max_points = rows + 1;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_json_request_decode(b, n, &lim, &r, &e), HL_FORMAT);
    ck_assert_str_eq(e.field, "body");
    ck_assert_uint_eq(e.offset, n - 10);
    free(b);
}
END_TEST

/* N = max_points and D = max_dim are accepted; wide rows. */
START_TEST(test_limits_inclusive)
{
    size_t d = 4096, n = 0;
    char *b = malloc(d * 2 * 3 + 64);
    n += (size_t)sprintf(b, "{\"embeddings\": [");
    for (int row = 0; row < 3; row++) {
        b[n++] = '[';
        for (size_t j = 0; j < d; j++)
            n += (size_t)sprintf(b + n, "%d,", (int)((j + (size_t)row) % 10));
        b[n - 1] = ']';
        b[n++] = ',';
    }
    b[n - 1] = ']';
    b[n++] = '}';
    hl_request_limits lim = {3, d, 3};
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_json_request_decode(b, n, &lim, &r, &e) == HL_OK, "%s", e.msg);
    ck_assert_uint_eq(r.x.rows, 3);
    ck_assert_uint_eq(r.x.cols, d);
    for (size_t i = 0; i < 3 * d; i++)
        ck_assert(r.x.data[i] == (float)((i % d + i / d) % 10));
    hl_cluster_request_free(&r);
    lim.max_dim = d - 1;
    ck_assert_int_eq(hl_json_request_decode(b, n, &lim, &r, &e), HL_INVAL);
    ck_assert_str_eq(e.field, "dim");
    lim.max_dim = d;
    lim.max_points = 2;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_json_request_decode(b, n, &lim, &r, &e), HL_INVAL);
    ck_assert_str_eq(e.field, "n");
    free(b);
}
END_TEST

/* ------------------------------------------------------------------ numbers vs strtof */

/* Sanitizer builds compare half as many numbers, to stay within a minute on 2 cores. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NUMBERS_SCALE 2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NUMBERS_SCALE 2
#endif
#endif
#ifndef NUMBERS_SCALE
#define NUMBERS_SCALE 1
#endif

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A batch of number strings decoded in one body and compared with strtof(). */
typedef struct batch {
    char *text; /* the strings, NUL-separated */
    size_t len, cap, count;
    size_t tested, overflow;
} batch;

#define BATCH_COLS 1000

static void check_overflow(const char *s)
{
    char b[1024];
    snprintf(b, sizeof(b), "{\"embeddings\": [[%s], [1]]}", s);
    hl_cluster_request r;
    hl_error e;
    ck_assert_msg(decode(b, NULL, &r, &e) == HL_NUMERIC, "%s: strtof overflows, we do not", s);
    ck_assert_str_eq(e.field, "embeddings");
}

static void flush(batch *bt)
{
    if (bt->count == 0)
        return;
    size_t rows = (bt->count + BATCH_COLS - 1) / BATCH_COLS;
    if (rows < 2)
        rows = 2;
    size_t cap = bt->len + rows * (BATCH_COLS * 2 + 8) + 64, n = 0;
    char *body = malloc(cap);
    float *want = malloc(rows * BATCH_COLS * sizeof(float));
    const char **src = malloc(rows * BATCH_COLS * sizeof(char *));
    n += (size_t)sprintf(body, "{\"embeddings\":[");
    const char *s = bt->text;
    for (size_t i = 0; i < rows * BATCH_COLS; i++) {
        const char *v = "0";
        if (i < bt->count) {
            v = s;
            s += strlen(s) + 1;
        }
        src[i] = v;
        want[i] = strtof(v, NULL);
        if (i % BATCH_COLS == 0)
            body[n++] = '[';
        size_t l = strlen(v);
        memcpy(body + n, v, l);
        n += l;
        body[n++] = (i + 1) % BATCH_COLS == 0 ? ']' : ',';
        if ((i + 1) % BATCH_COLS == 0)
            body[n++] = ',';
    }
    body[n - 1] = ']';
    body[n++] = '}';
    hl_request_limits lim = {rows, BATCH_COLS, 2};
    hl_cluster_request r;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_msg(hl_json_request_decode(body, n, &lim, &r, &e) == HL_OK, "%s", e.msg);
    int bad = 0;
    for (size_t i = 0; i < rows * BATCH_COLS; i++) {
        if (bits(r.x.data[i]) != bits(want[i]) && bad++ < 10)
            fprintf(stderr, "%s: got %a, strtof gives %a\n", src[i], (double)r.x.data[i],
                    (double)want[i]);
    }
    ck_assert_msg(bad == 0, "%d values differ from strtof", bad);
    bt->tested += bt->count;
    hl_cluster_request_free(&r);
    free(src);
    free(want);
    free(body);
    bt->len = bt->count = 0;
}

static void add(batch *bt, const char *s)
{
    if (isinf(strtof(s, NULL))) { /* tested on its own: it must be refused */
        check_overflow(s);
        bt->overflow++;
        return;
    }
    size_t l = strlen(s) + 1;
    if (bt->len + l > bt->cap) {
        bt->cap = (bt->len + l) * 2;
        bt->text = realloc(bt->text, bt->cap);
    }
    memcpy(bt->text + bt->len, s, l);
    bt->len += l;
    if (++bt->count == 100 * BATCH_COLS)
        flush(bt);
}

static float rand_float(uint32_t lo, uint32_t hi) /* finite, |bits| in [lo, hi) */
{
    uint32_t u = lo + (uint32_t)(rnd() % (hi - lo));
    u |= (uint32_t)(rnd() & 1) << 31;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Random floats, printed as clients print them, at every precision. */
static void gen_floats(batch *bt, size_t n, uint32_t lo, uint32_t hi)
{
    char s[256];
    for (size_t i = 0; i < n; i++) {
        double f = (double)rand_float(lo, hi);
        switch (rnd() % 6) {
            case 0:
                snprintf(s, sizeof(s), "%.9g", f);
                break;
            case 1:
                snprintf(s, sizeof(s), "%.17g", f);
                break;
            case 2:
                snprintf(s, sizeof(s), "%.*g", 1 + (int)(rnd() % 12), f);
                break;
            case 3:
                snprintf(s, sizeof(s), "%.*e", (int)(rnd() % 25), f);
                break;
            case 4:
                snprintf(s, sizeof(s), "%.*f", (int)(rnd() % 30), fabs(f) < 1e30 ? f : 1.0);
                break;
            default: { /* a double near the float, as float64 data would be */
                double d = f * (1.0 + ((double)(rnd() % 2001) - 1000.0) * 1e-12);
                snprintf(s, sizeof(s), "%.17g", d);
            }
        }
        add(bt, s);
    }
}

/* Exact float midpoints (as decimal), just above and just below, and their double neighbours:
 * the inputs where rounding through double goes wrong. */
static void gen_midpoints(batch *bt, size_t n, uint32_t lo, uint32_t hi)
{
    char s[512], t[512];
    for (size_t i = 0; i < n; i++) {
        float f = rand_float(lo, hi);
        float g = nextafterf(f, f < 0 ? -INFINITY : INFINITY);
        if (isinf(g))
            continue;
        double m = ((double)f + (double)g) / 2; /* exact */
        snprintf(s, sizeof(s), "%.130e", m);    /* exact: every midpoint has <= 113 digits */
        add(bt, s);
        char *e = strchr(s, 'e');
        size_t mant = (size_t)(e - s);
        snprintf(t, sizeof(t), "%.*s1%s", (int)mant, s, e); /* just above |m| */
        add(bt, t);
        size_t keep = 4 + rnd() % 40; /* truncated: just below |m| */
        if (keep < mant) {
            snprintf(t, sizeof(t), "%.*s%s", (int)keep, s, e);
            add(bt, t);
        }
        snprintf(t, sizeof(t), "%.17g", nextafter(m, 0));
        add(bt, t);
        snprintf(t, sizeof(t), "%.17g", nextafter(m, m < 0 ? -INFINITY : INFINITY));
        add(bt, t);
        snprintf(t, sizeof(t), "%.20g", m);
        add(bt, t);
    }
}

/* Digit strings: integers of 1..40 digits, long mantissas, leading zeros, big exponents. */
static void gen_digits(batch *bt, size_t n)
{
    char s[700];
    for (size_t i = 0; i < n; i++) {
        size_t k = 0, nd = 1 + rnd() % (rnd() % 8 == 0 ? 600 : 40);
        if (rnd() & 1)
            s[k++] = '-';
        int kind = (int)(rnd() % 4);
        if (kind == 1) { /* 0.000ddd */
            s[k++] = '0';
            s[k++] = '.';
            for (size_t z = rnd() % 50; z > 0; z--)
                s[k++] = '0';
        }
        for (size_t j = 0; j < nd; j++) {
            s[k++] = (char)('0' + rnd() % 10);
            if (j == 0 && kind != 1 && s[k - 1] == '0')
                s[k - 1] = '1';
            if (kind == 2 && j + 1 == nd / 2 && j + 1 < nd)
                s[k++] = '.';
        }
        if (kind == 3 || rnd() % 3 == 0)
            k += (size_t)sprintf(s + k, "e%s%d", rnd() & 1 ? "-" : (rnd() & 1 ? "+" : ""),
                                 (int)(rnd() % 60));
        s[k] = '\0';
        add(bt, s);
    }
}

static const char *const edge_numbers[] = {
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0E-0",
    "0e+999999999999",
    "-0.000e-99999999999999999",
    "1",
    "-1",
    "16777216",
    "16777217",
    "16777218",
    "16777219",
    "33554431",
    "33554433",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "1e22",
    "1e23",
    "9999999999999999999e22",
    "1e-22",
    "1e-23",
    "0.1",
    "0.2",
    "0.3",
    "0.7",
    "1.1",
    "3.14159265358979323846",
    "0.0123456789",
    "-0.012345679104328156",
    "1.00000005960464477539062", /* 1 + 2^-24 */
    "1.000000059604644775390625",
    "1.000000059604644775390626",
    "1.000000059604644775390624",
    "1.00000017881393432617187499",
    "1.000000178813934326171875", /* 1 + 3*2^-24: to even */
    "3.4028234663852886e38",
    "3.4028235e38",
    "3.40282346638528859811704183484516925440e38",
    "3.4028235677973366e38",
    "3.40282356779733661637539395458142568447e38", /* under the half */
    "1.17549435e-38",
    "1.1754942e-38",
    "1.17549421e-38",
    "1.4e-45",
    "1.401298464324817e-45",
    "7.006492321624085e-46",                    /* just above half the least denormal */
    "7.0064923216240853546186479164495807e-46", /* exactly half: to even, 0 */
    "7.00649232162408535461864791644958066e-46",
    "7.00649232162408535461864791644958065e-46",
    "2.1019476964872256e-45",
    "2.8e-45",
    "1e-45",
    "1e-46",
    "1e-50",
    "-1e-400",
    "1e-99999999999",
    "4.9406564584124654e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "0.00000000000000000000000000000000000000000000000000000000001",
    "1e-38",
    "1e38",
    "123456789012345678901234567890e-50",
    "0.000001e6",
    "1000000e-6",
    "100000000000000000000e-20",
    "0.999999999999999999999999999999999999999999",
    "1.0000000000000000000000000000000000001",
    "12345678901234567890.12345678901234567890",
    "5e-324",
    "1.5e-45",
    "2.5e-45",
    "-2.5e-45",
};

START_TEST(test_numbers_vs_strtof)
{
    batch bt;
    memset(&bt, 0, sizeof(bt));
    rng_state = 20240611;
    for (size_t i = 0; i < sizeof(edge_numbers) / sizeof(edge_numbers[0]); i++)
        add(&bt, edge_numbers[i]);
    const size_t k = NUMBERS_SCALE;
    gen_floats(&bt, 1200000 / k, 0x00000001u, 0x7F800000u);   /* every finite magnitude */
    gen_floats(&bt, 300000 / k, 0x3A000000u, 0x3F800000u);    /* |x| in [2^-11, 1) */
    gen_floats(&bt, 150000 / k, 0x00000001u, 0x00800000u);    /* denormals */
    gen_midpoints(&bt, 150000 / k, 0x00000001u, 0x7F800000u); /* 6 inputs each */
    gen_midpoints(&bt, 30000 / k, 0x00000001u, 0x00800000u);
    gen_digits(&bt, 400000 / k);
    flush(&bt);
    free(bt.text);
    ck_assert_uint_ge(bt.tested, 3000000 / k);
    ck_assert_uint_ge(bt.overflow, 100 / k); /* the generators reach past FLT_MAX too */
    fprintf(stderr, "numbers: %zu compared with strtof, %zu overflows refused\n", bt.tested,
            bt.overflow);
}
END_TEST

START_TEST(test_numbers_signed_zero_and_overflow)
{
    hl_cluster_request r;
    hl_error e;
    ck_assert_int_eq(
        decode("{\"embeddings\":[[-0, 0, -0.0e5, -1e-60], [1e-60, 1, 2, 3]]}", NULL, &r, &e),
        HL_OK);
    ck_assert_uint_eq(bits(r.x.data[0]), 0x80000000u);
    ck_assert_uint_eq(bits(r.x.data[1]), 0);
    ck_assert_uint_eq(bits(r.x.data[2]), 0x80000000u);
    ck_assert_uint_eq(bits(r.x.data[3]), 0x80000000u);
    ck_assert_uint_eq(bits(r.x.data[4]), 0);
    hl_cluster_request_free(&r);
    /* the largest float, and the first value that rounds past it */
    ck_assert_int_eq(
        decode("{\"embeddings\":[[3.4028235677973365e38], [-3.4028235e38]]}", NULL, &r, &e), HL_OK);
    ck_assert(r.x.data[0] == FLT_MAX && r.x.data[1] == -FLT_MAX);
    hl_cluster_request_free(&r);
    ck_assert_int_eq(decode("{\"embeddings\":[[3.4028235677973367e38], [1]]}", NULL, &r, &e),
                     HL_NUMERIC);
    ck_assert_int_eq(decode("{\"embeddings\":[[-3.40282356779733661637539395458142568448e38], "
                            "[1]]}",
                            NULL, &r, &e),
                     HL_NUMERIC); /* exactly half-way to 2^128: ties to even, 2^128 */
    /* 10^6 digits in one number: the slow path copies a bounded prefix */
    size_t nd = 1000000;
    char *b = malloc(nd + 64);
    size_t n = (size_t)sprintf(b, "{\"embeddings\":[[0.");
    memset(b + n, '3', nd);
    n += nd;
    n += (size_t)sprintf(b + n, "], [1]]}");
    ck_assert_int_eq(hl_json_request_decode(b, n, NULL, &r, &e), HL_OK);
    ck_assert(r.x.data[0] == strtof("0.33333333333333333333333", NULL));
    hl_cluster_request_free(&r);
    free(b);
}
END_TEST

/* ------------------------------------------------------------------ query strings */

START_TEST(test_query_valid)
{
    hl_request_params p;
    char model[65];
    size_t dim = 99;
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_query_decode(NULL, &p, model, &dim, &e), HL_OK);
    ck_assert(dim == 0 && model[0] == '\0' && !p.has_k);
    ck_assert_int_eq(hl_query_decode("", &p, model, &dim, &e), HL_OK);
    ck_assert_int_eq(hl_query_decode("?model=universal&k=10&tau=0.8&max_levels=3&min_cluster_"
                                     "size=5&knn=exact&early_stop=1&new_clusters=unassigned&"
                                     "dim=128",
                                     &p, model, &dim, &e),
                     HL_OK);
    ck_assert_str_eq(model, "universal");
    ck_assert(p.has_k && p.k == 10 && p.has_tau && p.tau == 0.8f);
    ck_assert(p.has_max_levels && p.max_levels == 3);
    ck_assert(p.has_min_cluster_size && p.min_cluster_size == 5);
    ck_assert(p.has_knn && strcmp(p.knn, "exact") == 0);
    ck_assert(p.has_early_stop && p.early_stop == 1);
    ck_assert(p.has_new_clusters && strcmp(p.new_clusters, "unassigned") == 0);
    ck_assert_uint_eq(dim, 128);
    ck_assert_int_eq(hl_query_decode("model=glyphs%2D128&kn%6E=h%6esw&early_stop=false&tau=5e-1",
                                     &p, model, NULL, &e),
                     HL_OK);
    ck_assert_str_eq(model, "glyphs-128");
    ck_assert_str_eq(p.knn, "hnsw");
    ck_assert(p.has_early_stop && p.early_stop == 0 && p.tau == 0.5f && !p.has_k);
    ck_assert_int_eq(hl_query_decode("&&early_stop=true&&tau=1&k=1024&", &p, model, &dim, &e),
                     HL_OK);
    ck_assert(p.early_stop == 1 && p.tau == 1.0f && p.k == 1024 && dim == 0);
    ck_assert_int_eq(hl_query_decode("early_stop=0&tau=0", &p, model, &dim, &e), HL_OK);
    ck_assert(p.has_early_stop && p.early_stop == 0 && p.has_tau && p.tau == 0.0f);
    ck_assert_int_eq(e.code, HL_OK);
}
END_TEST

typedef struct query_case {
    const char *q;
    int with_dim;
    const char *field;
    size_t offset;
    const char *msg;
} query_case;

static const query_case query_cases[] = {
    {"k=1", 1, "params/k", 0, "out of range (2..1024)"},
    {"k=1025", 1, "params/k", 0, "out of range"},
    {"k=-5", 1, "params/k", 0, "out of range"},
    {"k=99999999999999999999999", 1, "params/k", 0, "out of range"},
    {"k=933000000200000000001", 1, "params/k", 0, "out of range"},
    {"dim=9223372036854775808", 1, "dim", 0, "dim must be"},
    {"k=abc", 1, "params/k", 0, "must be an integer"},
    {"k=010", 1, "params/k", 0, "must be an integer"},
    {"k=1.0", 1, "params/k", 0, "must be an integer"},
    {"k=", 1, "params/k", 0, "must be an integer"},
    {"k", 1, "params/k", 0, "must be an integer"},
    {"k=+5", 1, "params/k", 0, "must be an integer"},
    {"model=m&tau=1.5", 1, "params/tau", 8, "out of range"},
    {"tau=-0.1", 1, "params/tau", 0, "out of range"},
    {"tau=1e99", 1, "params/tau", 0, "out of range"},
    {"tau=.5", 1, "params/tau", 0, "must be a number"},
    {"tau=0.5x", 1, "params/tau", 0, "must be a number"},
    {"tau=NaN", 1, "params/tau", 0, "must be a number"},
    {"max_levels=0", 1, "params/max_levels", 0, "out of range"},
    {"max_levels=65", 1, "params/max_levels", 0, "out of range"},
    {"min_cluster_size=0", 1, "params/min_cluster_size", 0, "out of range"},
    {"knn=annoy", 1, "params/knn", 0, "must be one of"},
    {"knn=AUTO", 1, "params/knn", 0, "must be one of"},
    {"early_stop=yes", 1, "params/early_stop", 0, "must be a boolean"},
    {"early_stop=", 1, "params/early_stop", 0, "must be a boolean"},
    {"new_clusters=closed", 1, "params/new_clusters", 0, "must be one of"},
    {"model=a+b", 1, "model", 0, "model must be"},
    {"model=", 1, "model", 0, "model must be"},
    {"model=a%2Fb", 1, "model", 0, "model must be"},
    {"model=ab123456789012345678901234567890123456789012345678901234567890123", 1, "model", 0,
     "model must be"},
    {"dim=0", 1, "dim", 0, "dim must be"},
    {"dim=abc", 1, "dim", 0, "dim must be"},
    {"dim=2147483648", 1, "dim", 0, "dim must be"},
    {"dim=3", 0, "dim", 0, "not accepted"},
    {"format=npy", 1, "params/format", 0, "unknown query parameter"},
    {"k=3&levels=all", 1, "params/levels", 4, "unknown query parameter"},
    {"offset=0", 1, "params/offset", 0, "unknown query parameter"},
    {"limit=10", 1, "params/limit", 0, "unknown query parameter"},
    {"K=10", 1, "params/K", 0, "unknown query parameter"},
    {"k=10&k=10", 1, "params/k", 5, "repeated"},
    {"model=a&model=b", 1, "model", 8, "repeated"},
    {"dim=3&dim=3", 1, "dim", 6, "repeated"},
    {"k=%zz", 1, "query", 2, "percent-encoding"},
    {"k=%1", 1, "query", 2, "percent-encoding"},
    {"k=1%", 1, "query", 3, "percent-encoding"},
    {"k=%00", 1, "query", 2, "percent-encoding"},
    {"%6g=3", 1, "query", 0, "percent-encoding"},
    {"a%0Ab%FF%C3%A9=1", 1, "params/a?b?\xc3\xa9", 0, "\"a?b?\xc3\xa9\""},
    {"%E2%82=1", 1, "params/??", 0, "unknown"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1", 1,
     "query", 0, "name too long"},
};

START_TEST(test_query_errors)
{
    const query_case *c = &query_cases[_i];
    hl_request_params p;
    char model[65];
    size_t dim = 7;
    hl_error e;
    hl_error_clear(&e);
    hl_status st = hl_query_decode(c->q, &p, model, c->with_dim ? &dim : NULL, &e);
    ck_assert_msg(st == HL_INVAL, "%s: %s", c->q, hl_status_name(st));
    ck_assert_int_eq(e.code, HL_INVAL);
    ck_assert_msg(strcmp(e.field, c->field) == 0, "%s: field %s, want %s", c->q, e.field, c->field);
    ck_assert_msg(e.has_offset && e.offset == c->offset, "%s: offset %zu, want %zu", c->q, e.offset,
                  c->offset);
    ck_assert_msg(strstr(e.msg, c->msg) != NULL, "%s: message \"%s\" lacks \"%s\"", c->q, e.msg,
                  c->msg);
    /* outputs zeroed on error */
    ck_assert(!p.has_k && !p.has_tau && model[0] == '\0' && dim == (c->with_dim ? 0u : 7u));
}
END_TEST

START_TEST(test_query_length)
{
    size_t n = HL_QUERY_MAX_BYTES;
    char *q = malloc(n + 2);
    memset(q, '&', n);
    memcpy(q + n - 4, "k=10", 4);
    q[n] = '\0';
    hl_request_params p;
    char model[65];
    hl_error e;
    hl_error_clear(&e);
    ck_assert_int_eq(hl_query_decode(q, &p, model, NULL, &e), HL_OK);
    ck_assert_int_eq(p.k, 10);
    q[n] = '&';
    q[n + 1] = '\0';
    ck_assert_int_eq(hl_query_decode(q, &p, model, NULL, &e), HL_INVAL);
    ck_assert_str_eq(e.field, "query");
    ck_assert(!p.has_k);
    free(q);
}
END_TEST

Suite *json_codec_suite(void);
Suite *json_codec_suite(void)
{
    Suite *s = suite_create("json_codec");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, test_valid_everything);
    tcase_add_test(tc, test_valid_minimal);
    tcase_add_test(tc, test_length_not_nul);
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof(err_cases) / sizeof(err_cases[0])));
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_fail_fast);
    tcase_add_test(tc, test_limits_inclusive);
    suite_add_tcase(s, tc);
    TCase *tn = tcase_create("numbers");
    tcase_set_timeout(tn, 300);
    tcase_add_test(tn, test_numbers_vs_strtof);
    tcase_add_test(tn, test_numbers_signed_zero_and_overflow);
    suite_add_tcase(s, tn);
    TCase *tq = tcase_create("query");
    tcase_add_test(tq, test_query_valid);
    tcase_add_loop_test(tq, test_query_errors, 0,
                        (int)(sizeof(query_cases) / sizeof(query_cases[0])));
    tcase_add_test(tq, test_query_length);
    suite_add_tcase(s, tq);
    return s;
}
