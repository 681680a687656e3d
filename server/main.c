/*
 * main.c - hilanderd: configure, load models, open the store, start workers, the HTTP
 * daemon and the loop; on SIGTERM drain and exit 0 (see loop.c for the sequence).
 *
 * `hilanderd --healthcheck [URL]` asks /livez (or URL) once and exits 0 on 200, else 1.
 *
 * Exit codes: 0 after a clean shutdown; 2 for a bad setting, a model that does not load or a
 * default model that does not exist (one line on stderr); 1 for other start failures.
 */
#include "auth.h"
#include "bodies.h"
#include "config.h"
#include "healthcheck.h"
#include "http.h"
#include "jobs.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "model_registry.h"
#include "server.h"
#include "state_cache.h"
#include "stream_jobs.h"

#include "hl/file.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
extern const char srv_openapi_yaml[];
extern const size_t srv_openapi_yaml_len;

#define SHUTDOWN_WAIT_SECONDS 60.0

static int write_port_file(const char *path, int port)
{
    char tmp[SRV_PATH_MAX + 16], text[16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int n = snprintf(text, sizeof(text), "%d\n", port);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    int ok = fwrite(text, 1, (size_t)n, f) == (size_t)n;
    ok = (fclose(f) == 0) && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static hl_status open_store(const srv_config *cfg, srv_store **out, hl_error *err)
{
    if (cfg->redis[0] == '\0')
        return srv_store_mem_new((size_t)cfg->store_max_bytes, out);
    return srv_store_redis_new(cfg->redis, 2000, cfg->http_threads + cfg->workers + 2, out, err);
}

/* The queued jobs left at shutdown end canceled with a clear error. With Redis they are
 * handed back to the stream instead, and running jobs stop and are handed back too, for
 * another replica to run (api.md "Shutdown"). */
static void cancel_queued(srv_ctx *ctx)
{
    srv_job **left = NULL;
    size_t n = 0;
    srv_jobq_close(ctx->queue, &left, &n);
    if (ctx->use_stream) {
        srv_stream_release_queued(ctx, left, n);
        srv_stream_abandon_running(ctx);
        free(left);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        srv_job_cancel_queued(ctx, left[i], "the server shut down before the job started");
        srv_job_release(left[i]);
    }
    free(left);
}

static int serve(srv_ctx *ctx)
{
    srv_workers *workers = NULL;
    srv_claimer *claimer = NULL;
    srv_loop *loop = NULL;
    srv_http *http = NULL;
    hl_error err;
    hl_error_clear(&err);
    int rc = 1;
    if (srv_loop_new(ctx, &loop) != HL_OK ||
        srv_workers_start(ctx, ctx->cfg->workers, &workers) != HL_OK) {
        fprintf(stderr, "hilanderd: cannot start the loop or the workers\n");
        goto out;
    }
    if (ctx->use_stream && srv_claimer_start(ctx, &claimer) != HL_OK) {
        fprintf(stderr, "hilanderd: cannot start the job stream claimer\n");
        goto out;
    }
    if (srv_http_start(ctx, &http, &err) != HL_OK) {
        fprintf(stderr, "hilanderd: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    if (srv_loop_start(loop, http) != HL_OK) {
        fprintf(stderr, "hilanderd: cannot install the signal handlers\n");
        goto out;
    }
    if (ctx->cfg->port_file[0] != '\0' &&
        write_port_file(ctx->cfg->port_file, srv_http_port(http)) != 0) {
        fprintf(stderr, "hilanderd: cannot write --port-file %s\n", ctx->cfg->port_file);
        goto out;
    }
    char port[16], workers_s[16];
    snprintf(port, sizeof(port), "#%d", srv_http_port(http));
    snprintf(workers_s, sizeof(workers_s), "#%d", ctx->cfg->workers);
    const char *kv[] = {"listen",  ctx->cfg->listen, "port",  port,
                        "workers", workers_s,        "store", ctx->store->ops->name,
                        "replica", ctx->replica};
    srv_log(SRV_LOG_INFO, "listening", kv, 5);
    srv_loop_run(loop);
    rc = 0;
out:
    /* Queued jobs are canceled, running ones finish, then everyone waiting is answered. */
    cancel_queued(ctx);
    srv_workers_join(workers);
    srv_claimer_join(claimer); /* after the workers: it refreshes their entries until then */
    if (loop != NULL)
        srv_loop_flush(loop);
    if (http != NULL) {
        srv_http_wake_all(http);
        double t0 = srv_mono();
        while (srv_http_inflight(http) > 0 && srv_mono() - t0 < SHUTDOWN_WAIT_SECONDS)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        srv_http_stop(http);
    }
    srv_loop_free(loop);
    if (rc == 0)
        srv_log(SRV_LOG_INFO, "stopped", NULL, 0);
    return rc;
}

/* --hash-key NAME: reads one key from stdin, prints "NAME sha256:HEX" (never the key). */
static int hash_key(const char *name)
{
    char key[SRV_AUTH_KEY_MAX + 4], line[128];
    if (fgets(key, sizeof(key), stdin) == NULL) {
        fprintf(stderr, "hilanderd: --hash-key: no key on standard input\n");
        return 2;
    }
    size_t n = strlen(key);
    while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
        key[--n] = '\0';
    hl_status st = srv_auth_hash_line(name, key, line, sizeof(line));
    memset(key, 0, sizeof(key));
    if (st != HL_OK) {
        fprintf(stderr,
                "hilanderd: --hash-key: the key must be %d-%d characters of A-Z a-z 0-9 - . _ ~ "
                "+ / (then '=' padding)\n",
                SRV_AUTH_KEY_MIN, SRV_AUTH_KEY_MAX);
        return 2;
    }
    printf("%s\n", line);
    return 0;
}

/* --replica, or hostname-pid. */
static void replica_name(const srv_config *cfg, char *out, size_t len)
{
    if (cfg->replica[0] != '\0') {
        snprintf(out, len, "%s", cfg->replica);
        return;
    }
    char host[64] = "hilanderd";
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "hilanderd");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "%.40s-%ld", host, (long)getpid());
}

int main(int argc, char **argv)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    int ncores = nc < 1 ? 1 : (nc > 256 ? 256 : (int)nc);
    static srv_config cfg;
    char msg[512];
    if (argc >= 2 && strcmp(argv[1], "--healthcheck") == 0)
        return srv_healthcheck_main(argc, argv, environ);
    if (srv_config_parse(argc, argv, environ, ncores, &cfg, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "hilanderd: %s\n", msg);
        return 2;
    }
    switch (cfg.action) {
        case SRV_ACTION_HELP:
            srv_config_help(stdout, ncores);
            return 0;
        case SRV_ACTION_VERSION:
            printf("hilanderd %s\n", HILANDER_VERSION);
            return 0;
        case SRV_ACTION_PRINT_ROUTES:
            srv_routes_print(stdout);
            return 0;
        case SRV_ACTION_HASH_KEY:
            return hash_key(cfg.hash_key_name);
        case SRV_ACTION_RUN:
            break;
    }
    srv_log_set_level(cfg.log_level);
    /* Parallelism comes from workers and engine threads; BLAS stays single-threaded. */
    openblas_set_num_threads(1);
    hl_error err;
    hl_error_clear(&err);
    srv_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = &cfg;
    void *openapi = NULL;
    size_t openapi_len = 0;
    if (cfg.openapi_file[0] != '\0' &&
        hl_file_read(cfg.openapi_file, &openapi, &openapi_len, &err) != HL_OK) {
        fprintf(stderr, "hilanderd: --openapi-file: %s\n", err.msg);
        return 2;
    }
    ctx.openapi = openapi != NULL ? openapi : srv_openapi_yaml;
    ctx.openapi_len = openapi != NULL ? openapi_len : srv_openapi_yaml_len;
    srv_models *models = NULL;
    hl_status st = srv_models_load(cfg.model_dir, cfg.default_model, &models, &err);
    if (st != HL_OK) {
        fprintf(stderr, "hilanderd: %s\n", err.msg);
        free(openapi);
        return 2;
    }
    ctx.models = models;
    st = open_store(&cfg, &ctx.store, &err);
    if (st != HL_OK) {
        fprintf(stderr, "hilanderd: %s\n",
                err.msg[0] != '\0' ? err.msg : "cannot create the store");
        srv_models_free(models);
        free(openapi);
        return 2;
    }
    replica_name(&cfg, ctx.replica, sizeof(ctx.replica));
    ctx.use_stream = cfg.redis[0] != '\0';
    atomic_init(&ctx.stream_busy, 0);
    if (cfg.api_keys[0] != '\0' &&
        srv_auth_load(cfg.api_keys, cfg.key_rate, &ctx.auth, &err) != HL_OK) {
        fprintf(stderr, "hilanderd: --api-keys %s\n", err.msg);
        ctx.store->ops->destroy(ctx.store);
        srv_models_free(models);
        free(openapi);
        return 2;
    }
    int rc = 1;
    if (srv_metrics_new(&ctx.metrics) == HL_OK && srv_jobs_new(&ctx.jobs) == HL_OK &&
        srv_state_cache_new((size_t)cfg.state_cache_bytes, &ctx.state_cache) == HL_OK &&
        (ctx.bodies = srv_bodies_new((size_t)cfg.body_pool_bytes)) != NULL &&
        srv_jobq_new((size_t)cfg.queue_capacity, &ctx.queue) == HL_OK)
        rc = serve(&ctx);
    else
        fprintf(stderr, "hilanderd: out of memory at start\n");
    srv_jobq_free(ctx.queue);
    srv_jobs_free(ctx.jobs);
    srv_state_cache_free(ctx.state_cache);
    srv_bodies_free(ctx.bodies);
    srv_metrics_free(ctx.metrics);
    ctx.store->ops->destroy(ctx.store);
    srv_auth_free(ctx.auth);
    srv_models_free(models);
    free(openapi);
    return rc;
}
