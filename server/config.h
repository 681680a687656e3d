/*
 * config.h - hilanderd's settings: one table, validated once into an immutable struct.
 *
 * Every setting has a flag (--name), an environment variable (HILANDER_*), a type, a default
 * and bounds; a flag beats the environment, which beats the default. srv_config_parse()
 * fills a srv_config or reports one line naming the setting (the caller exits with 2).
 * Action flags (--help, --version, --print-routes, --hash-key NAME) are reported in
 * srv_config.action.
 *
 * Thread-safety: parsing is single-threaded (main, before any thread starts); the resulting
 * struct is read-only afterwards and may be shared by every thread.
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum srv_log_level {
    SRV_LOG_DEBUG = 0,
    SRV_LOG_INFO = 1,
    SRV_LOG_WARN = 2,
    SRV_LOG_ERROR = 3,
} srv_log_level;

typedef enum srv_action {
    SRV_ACTION_RUN = 0,
    SRV_ACTION_HELP,
    SRV_ACTION_VERSION,
    SRV_ACTION_PRINT_ROUTES,
    SRV_ACTION_HASH_KEY, /* --hash-key NAME: read a key on stdin, print its api-keys line */
} srv_action;

#define SRV_PATH_MAX 1024

typedef struct srv_config {
    char listen[256];
    int port;
    int workers;
    int http_threads;
    int engine_threads;
    int queue_capacity;
    uint64_t max_body_bytes;
    uint64_t max_points;
    uint64_t max_dim;
    uint64_t result_ttl;
    uint64_t store_max_bytes;
    uint64_t state_cache_bytes; /* decoded clustering states kept for assigns, 0 = none */
    uint64_t body_pool_bytes;   /* request body buffers kept for reuse, 0 = none */
    char redis[SRV_PATH_MAX];   /* "" = embedded store */
    char model_dir[SRV_PATH_MAX];
    char default_model[64];
    srv_log_level log_level;
    uint64_t drain_seconds;
    char port_file[SRV_PATH_MAX];
    char openapi_file[SRV_PATH_MAX]; /* "" = the copy embedded at build time */
    char replica[64];                /* "" = hostname-pid (main.c) */
    uint64_t claim_timeout;          /* seconds a claimed job may go unrefreshed (Redis) */
    int max_attempts;                /* claims of one job before it fails (Redis) */
    char api_keys[SRV_PATH_MAX];     /* "" = no authentication */
    int key_max_jobs;                /* per API key: queued + running jobs, 0 = no limit */
    int key_rate;                    /* per API key: requests per second, 0 = no limit */
    char hash_key_name[64];          /* --hash-key NAME */
    srv_action action;
} srv_config;

/*
 * Parses argv (flags as "--name value" or "--name=value") over the environment `envp`
 * (NULL-terminated "NAME=value" strings; NULL = none) and the defaults. `ncores` sizes the
 * defaults of --workers and --engine-threads. Returns 0, or -1 with a one-line message in
 * `msg` naming the setting.
 */
int srv_config_parse(int argc, char **argv, char **envp, int ncores, srv_config *out, char *msg,
                     size_t msg_len);

/** Prints --help: every setting with its flag, environment variable and default. */
void srv_config_help(FILE *f, int ncores);

/** Whether an API key name is 1-63 characters of A-Z a-z 0-9 . _ - (also used by apikeys.c). */
int srv_key_name_ok(const char *name);

/** "debug", "info", "warn", "error". */
const char *srv_log_level_name(srv_log_level l);

#endif
