/* test_config.c - settings: defaults, flag > env > default, bounds, bad values, help. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *config_suite(void);

static int parse(srv_config *c, char *msg, char **env, int argc, char **argv)
{
    return srv_config_parse(argc, argv, env, 8, c, msg, 256);
}

#define ARGV(...) ((char *[]){"hilanderd", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"hilanderd", __VA_ARGS__}) / sizeof(char *)))

START_TEST(defaults)
{
    srv_config c;
    char msg[256];
    char *argv[] = {"hilanderd", NULL};
    ck_assert_int_eq(parse(&c, msg, NULL, 1, argv), 0);
    ck_assert_str_eq(c.listen, "127.0.0.1");
    ck_assert_int_eq(c.port, 8080);
    ck_assert_int_eq(c.workers, 8);
    ck_assert_int_eq(c.engine_threads, 1);
    ck_assert_int_eq(c.http_threads, 4);
    ck_assert_int_eq(c.queue_capacity, 64);
    ck_assert_uint_eq(c.max_body_bytes, 1ULL << 30);
    ck_assert_uint_eq(c.max_points, 5000000);
    ck_assert_uint_eq(c.max_dim, 4096);
    ck_assert_uint_eq(c.result_ttl, 86400);
    ck_assert_uint_eq(c.store_max_bytes, 2ULL << 30);
    ck_assert_str_eq(c.redis, "");
    ck_assert_str_eq(c.model_dir, "models");
    ck_assert_str_eq(c.default_model, "universal");
    ck_assert_int_eq(c.log_level, SRV_LOG_INFO);
    ck_assert_uint_eq(c.drain_seconds, 30);
    ck_assert_str_eq(c.replica, "");
    ck_assert_uint_eq(c.claim_timeout, 60);
    ck_assert_int_eq(c.max_attempts, 3);
    ck_assert_str_eq(c.api_keys, "");
    ck_assert_int_eq(c.key_max_jobs, 0);
    ck_assert_int_eq(c.key_rate, 0);
    ck_assert_int_eq(c.action, SRV_ACTION_RUN);
}
END_TEST

START_TEST(precedence)
{
    srv_config c;
    char msg[256];
    char *env[] = {"HILANDER_PORT=9000", "HILANDER_LOG_LEVEL=debug", "HILANDER_WORKERS=2", NULL};
    char *none[] = {"hilanderd", NULL};
    ck_assert_int_eq(parse(&c, msg, env, 1, none), 0);
    ck_assert_int_eq(c.port, 9000); /* env over default */
    ck_assert_int_eq(c.log_level, SRV_LOG_DEBUG);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.engine_threads, 4); /* 8 cores / 2 workers */
    ck_assert_int_eq(parse(&c, msg, env, ARGC("--port", "9100", "--workers=3"),
                           ARGV("--port", "9100", "--workers=3")),
                     0);
    ck_assert_int_eq(c.port, 9100); /* flag over env */
    ck_assert_int_eq(c.workers, 3);
    ck_assert_int_eq(c.engine_threads, 2);
    ck_assert_int_eq(
        parse(&c, msg, env, ARGC("--engine-threads", "5"), ARGV("--engine-threads", "5")), 0);
    ck_assert_int_eq(c.engine_threads, 5);
}
END_TEST

START_TEST(sizes)
{
    srv_config c;
    char msg[256];
    ck_assert_int_eq(parse(&c, msg, NULL,
                           ARGC("--max-body-bytes", "64K", "--store-max-bytes", "3GiB"),
                           ARGV("--max-body-bytes", "64K", "--store-max-bytes", "3GiB")),
                     0);
    ck_assert_uint_eq(c.max_body_bytes, 65536);
    ck_assert_uint_eq(c.store_max_bytes, 3ULL << 30);
    ck_assert_int_eq(
        parse(&c, msg, NULL, ARGC("--max-body-bytes", "12Q"), ARGV("--max-body-bytes", "12Q")), -1);
    ck_assert_ptr_nonnull(strstr(msg, "--max-body-bytes"));
}
END_TEST

/* Each bad value gives one line naming the setting. */
START_TEST(bad_values)
{
    static char *cases[][3] = {
        {"--port", "70000", "--port"},
        {"--port", "abc", "--port"},
        {"--port", "-1", "--port"},
        {"--workers", "0", "--workers"},
        {"--http-threads", "65", "--http-threads"},
        {"--queue-capacity", "0", "--queue-capacity"},
        {"--max-points", "1", "--max-points"},
        {"--max-dim", "0", "--max-dim"},
        {"--result-ttl", "0", "--result-ttl"},
        {"--log-level", "loud", "--log-level"},
        {"--drain-seconds", "4000", "--drain-seconds"},
        {"--default-model", "", "--default-model"},
        {"--claim-timeout", "0", "--claim-timeout"},
        {"--max-attempts", "0", "--max-attempts"},
        {"--key-rate", "-2", "--key-rate"},
        {"--hash-key", "bad name", "--hash-key"},
        {"--bogus", "1", "--bogus"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        srv_config c;
        char msg[256];
        char *argv[] = {"hilanderd", cases[i][0], cases[i][1], NULL};
        ck_assert_msg(parse(&c, msg, NULL, 3, argv) == -1, "%s %s accepted", cases[i][0],
                      cases[i][1]);
        ck_assert_msg(strstr(msg, cases[i][2]) != NULL, "'%s' does not name %s", msg, cases[i][2]);
        ck_assert_ptr_null(strchr(msg, '\n'));
    }
    srv_config c;
    char msg[256];
    char *env[] = {"HILANDER_PORT=abc", NULL};
    char *none[] = {"hilanderd", NULL};
    ck_assert_int_eq(parse(&c, msg, env, 1, none), -1);
    ck_assert_ptr_nonnull(strstr(msg, "HILANDER_PORT"));
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--port"), ARGV("--port")), -1);
    ck_assert_ptr_nonnull(strstr(msg, "needs a value"));
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--port", "1", "--port", "2"),
                           ARGV("--port", "1", "--port", "2")),
                     -1);
    ck_assert_ptr_nonnull(strstr(msg, "twice"));
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("stray"), ARGV("stray")), -1);
}
END_TEST

START_TEST(actions)
{
    srv_config c;
    char msg[256];
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--help"), ARGV("--help")), 0);
    ck_assert_int_eq(c.action, SRV_ACTION_HELP);
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--version"), ARGV("--version")), 0);
    ck_assert_int_eq(c.action, SRV_ACTION_VERSION);
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--print-routes"), ARGV("--print-routes")), 0);
    ck_assert_int_eq(c.action, SRV_ACTION_PRINT_ROUTES);
    ck_assert_int_eq(
        parse(&c, msg, NULL, ARGC("--hash-key", "ci-bot"), ARGV("--hash-key", "ci-bot")), 0);
    ck_assert_int_eq(c.action, SRV_ACTION_HASH_KEY);
    ck_assert_str_eq(c.hash_key_name, "ci-bot");
    ck_assert_int_eq(parse(&c, msg, NULL, ARGC("--hash-key"), ARGV("--hash-key")), -1);
    ck_assert_ptr_nonnull(strstr(msg, "--hash-key"));
}
END_TEST

START_TEST(help_lists_everything)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    srv_config_help(f, 4);
    fclose(f);
    static const char *want[] = {"--listen",
                                 "HILANDER_LISTEN",
                                 "127.0.0.1",
                                 "--port",
                                 "HILANDER_PORT",
                                 "8080",
                                 "--workers",
                                 "HILANDER_WORKERS",
                                 "--http-threads",
                                 "--queue-capacity",
                                 "64",
                                 "--max-body-bytes",
                                 "1G",
                                 "--max-points",
                                 "5000000",
                                 "--max-dim",
                                 "4096",
                                 "--result-ttl",
                                 "86400",
                                 "--store-max-bytes",
                                 "2G",
                                 "--redis",
                                 "HILANDER_REDIS",
                                 "--model-dir",
                                 "--default-model",
                                 "universal",
                                 "--log-level",
                                 "info",
                                 "--drain-seconds",
                                 "30",
                                 "--engine-threads",
                                 "--port-file",
                                 "--print-routes",
                                 "--version",
                                 "--replica",
                                 "--claim-timeout",
                                 "--max-attempts",
                                 "--api-keys",
                                 "HILANDER_API_KEYS",
                                 "--key-max-jobs",
                                 "--key-rate",
                                 "--hash-key"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "--help lacks %s", want[i]);
    free(text);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, actions);
    tcase_add_test(tc, help_lists_everything);
    suite_add_tcase(s, tc);
    return s;
}
