/* test_router.c - route matching, 404/405, media types, body limits, query handling. */
#include "server.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *router_suite(void);

static srv_match match(srv_method m, const char *path, const srv_route **r, char *param,
                       char *allow)
{
    return srv_route_match(m, path, r, param, allow, 96);
}

START_TEST(routes_match)
{
    static const struct {
        srv_method m;
        const char *path, *pattern, *param;
    } ok[] = {
        {SRV_M_POST, "/v1/cluster", "/v1/cluster", ""},
        {SRV_M_POST, "/v1/clusterings/j_abc/assign", "/v1/clusterings/{id}/assign", "j_abc"},
        {SRV_M_GET, "/v1/jobs/j_abc", "/v1/jobs/{id}", "j_abc"},
        {SRV_M_DELETE, "/v1/jobs/j_abc", "/v1/jobs/{id}", "j_abc"},
        {SRV_M_GET, "/v1/jobs/j-1.2/result", "/v1/jobs/{id}/result", "j-1.2"},
        {SRV_M_GET, "/v1/models", "/v1/models", ""},
        {SRV_M_GET, "/v1/models/glyphs-128", "/v1/models/{name}", "glyphs-128"},
        {SRV_M_GET, "/livez", "/livez", ""},
        {SRV_M_GET, "/readyz", "/readyz", ""},
        {SRV_M_GET, "/metrics", "/metrics", ""},
        {SRV_M_GET, "/openapi.yaml", "/openapi.yaml", ""},
        {SRV_M_HEAD, "/livez", "/livez", ""},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const srv_route *r;
        char param[SRV_ID_MAX + 8] = "", allow[96];
        ck_assert_int_eq(match(ok[i].m, ok[i].path, &r, param, allow), SRV_MATCH_OK);
        ck_assert_str_eq(r->pattern, ok[i].pattern);
        if (ok[i].param[0] != '\0')
            ck_assert_str_eq(param, ok[i].param);
    }
}
END_TEST

START_TEST(not_found_and_bad_method)
{
    const srv_route *r;
    char param[SRV_ID_MAX + 8], allow[96];
    static const char *missing[] = {"/",
                                    "/v1",
                                    "/v1/cluster/x",
                                    "/v1/jobs/",
                                    "/v1/jobs/a/b",
                                    "/v1/jobs/a%20b",
                                    "/livez/",
                                    "/v2/cluster",
                                    "/v1/jobs/a b/result",
                                    "/v1/models/x/y"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
        ck_assert_msg(match(SRV_M_GET, missing[i], &r, param, allow) == SRV_MATCH_NOT_FOUND,
                      "%s matched", missing[i]);
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", long_id);
    ck_assert_int_eq(match(SRV_M_GET, path, &r, param, allow), SRV_MATCH_NOT_FOUND);
    ck_assert_int_eq(match(SRV_M_GET, "/v1/cluster", &r, param, allow), SRV_MATCH_BAD_METHOD);
    ck_assert_str_eq(allow, "POST, OPTIONS");
    ck_assert_int_eq(match(SRV_M_PUT, "/v1/jobs/x", &r, param, allow), SRV_MATCH_BAD_METHOD);
    ck_assert_str_eq(allow, "GET, DELETE, OPTIONS");
    ck_assert_int_eq(match(SRV_M_POST, "/metrics", &r, param, allow), SRV_MATCH_BAD_METHOD);
    ck_assert_str_eq(allow, "GET, OPTIONS");
    ck_assert_int_eq(match(SRV_M_OPTIONS, "/v1/models", &r, param, allow), SRV_MATCH_BAD_METHOD);
    ck_assert_int_eq(match(SRV_M_GET, "/v1/clusterings/x/assign", &r, param, allow),
                     SRV_MATCH_BAD_METHOD);
    ck_assert_str_eq(allow, "POST, OPTIONS");
    ck_assert_int_eq(match(SRV_M_POST, "/v1/clusterings/x", &r, param, allow), SRV_MATCH_NOT_FOUND);
    ck_assert_int_eq(match(SRV_M_POST, "/v1/clusterings//assign", &r, param, allow),
                     SRV_MATCH_NOT_FOUND);
}
END_TEST

START_TEST(methods)
{
    ck_assert_int_eq(srv_method_parse("GET"), SRV_M_GET);
    ck_assert_int_eq(srv_method_parse("DELETE"), SRV_M_DELETE);
    ck_assert_int_eq(srv_method_parse("get"), SRV_M_OTHER);
    ck_assert_int_eq(srv_method_parse("BREW"), SRV_M_OTHER);
    ck_assert_str_eq(srv_method_name(SRV_M_OPTIONS), "OPTIONS");
}
END_TEST

START_TEST(content_types)
{
    const srv_route *cluster, *get;
    char param[SRV_ID_MAX + 8], allow[96];
    match(SRV_M_POST, "/v1/cluster", &cluster, param, allow);
    match(SRV_M_GET, "/livez", &get, param, allow);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/json", 1, 10, 100), -1);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/x-npy", 1, 10, 100), -1);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/octet-stream", 0, 0, 100), -1);
    ck_assert_int_eq(srv_route_check_body(cluster, "text/plain", 1, 10, 100),
                     SRV_P_UNSUPPORTED_MEDIA_TYPE);
    ck_assert_int_eq(srv_route_check_body(cluster, "", 1, 10, 100), SRV_P_UNSUPPORTED_MEDIA_TYPE);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/jsonx", 1, 10, 100),
                     SRV_P_UNSUPPORTED_MEDIA_TYPE);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/json", 1, 101, 100),
                     SRV_P_BODY_TOO_LARGE);
    ck_assert_int_eq(srv_route_check_body(cluster, "application/json", 1, 100, 100), -1);
    ck_assert_int_eq(srv_route_check_body(get, "text/plain", 1, 1000, 100), -1);
    ck_assert_uint_eq(srv_media_flag("application/x-npy"), SRV_BODY_NPY);
    ck_assert_uint_eq(srv_media_flag("image/png"), 0);
}
END_TEST

START_TEST(query)
{
    srv_req r;
    srv_req_init(&r);
    ck_assert_int_eq(r.prefer_wait, -1);
    ck_assert_int_eq(srv_req_parse_query(&r, "model=glyphs-128&tau=0.8&name=a%20b%26c&flag"),
                     HL_OK);
    ck_assert_str_eq(srv_req_query(&r, "model"), "glyphs-128");
    ck_assert_str_eq(srv_req_query(&r, "name"), "a b&c");
    ck_assert_str_eq(srv_req_query(&r, "flag"), "");
    ck_assert_ptr_null(srv_req_query(&r, "k"));
    char *qs = srv_req_query_string(&r);
    ck_assert_str_eq(qs, "model=glyphs-128&tau=0.8&name=a%20b%26c&flag=");
    free(qs);
    for (int i = 0; i < SRV_MAX_QUERY; i++)
        srv_req_add_query(&r, "x", "y");
    ck_assert_int_eq(srv_req_add_query(&r, "x", "y"), HL_RANGE);
    srv_req_deinit(&r);
}
END_TEST

START_TEST(route_table_print)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    srv_routes_print(f);
    fclose(f);
    ck_assert_str_eq(text, "POST /v1/cluster\nPOST /v1/clusterings/{id}/assign\n"
                           "GET /v1/jobs/{id}\nDELETE /v1/jobs/{id}\n"
                           "GET /v1/jobs/{id}/result\nGET /v1/models\nGET /v1/models/{name}\n"
                           "GET /livez\nGET /readyz\nGET /metrics\nGET /openapi.yaml\n");
    free(text);
}
END_TEST

START_TEST(response_headers)
{
    srv_resp r;
    srv_resp_init(&r);
    srv_resp_header(&r, "Location", "/v1/jobs/%s", "x");
    srv_resp_header(&r, "location", "/v1/jobs/%s", "y"); /* replaces, case-insensitively */
    ck_assert_uint_eq(r.n_headers, 1);
    ck_assert_str_eq(srv_resp_get_header(&r, "LOCATION"), "/v1/jobs/y");
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "X-%d", i);
        srv_resp_header(&r, name, "v");
    }
    ck_assert_uint_eq(r.n_headers, SRV_MAX_HEADERS);
    srv_resp_clear(&r);
}
END_TEST

Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, routes_match);
    tcase_add_test(tc, not_found_and_bad_method);
    tcase_add_test(tc, methods);
    tcase_add_test(tc, content_types);
    tcase_add_test(tc, query);
    tcase_add_test(tc, route_table_print);
    tcase_add_test(tc, response_headers);
    suite_add_tcase(s, tc);
    return s;
}
