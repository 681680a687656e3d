/*
 * config.c - the settings table (redis's static_configs idea): one row per setting with its
 * flag, environment variable, type, default, bounds and help line. Parsing walks the table
 * three times in precedence order (default, environment, flags) and validates every value
 * with the same code, so a bad HILANDER_PORT and a bad --port give the same message.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum cfg_type {
    CFG_INT,  /* int within [min, max] */
    CFG_U64,  /* unsigned integer within [min, max] */
    CFG_SIZE, /* bytes: integer with an optional K/M/G/T suffix (binary) */
    CFG_STR,  /* string, max = buffer size */
    CFG_LEVEL,
} cfg_type;

typedef struct cfg_row {
    const char *name; /* flag without the dashes */
    const char *env;
    cfg_type type;
    const char *def; /* default as text; NULL = computed (see default_for) */
    uint64_t min, max;
    size_t off; /* offset in srv_config */
    size_t size;
    const char *help;
} cfg_row;

#define OFF(f) offsetof(srv_config, f)
#define SZ(f)  sizeof(((srv_config *)0)->f)
#define GIB    (1024ULL * 1024ULL * 1024ULL)
#define TIB    (1024ULL * GIB)

static const cfg_row rows[] = {
    {"listen", "HILANDER_LISTEN", CFG_STR, "127.0.0.1", 1, 0, OFF(listen), SZ(listen),
     "address to listen on (IPv4 or IPv6 literal, or localhost)"},
    {"port", "HILANDER_PORT", CFG_INT, "8080", 0, 65535, OFF(port), SZ(port),
     "TCP port (0 = any free port, see --port-file)"},
    {"workers", "HILANDER_WORKERS", CFG_INT, NULL, 1, 256, OFF(workers), SZ(workers),
     "job worker threads (default: number of cores)"},
    {"http-threads", "HILANDER_HTTP_THREADS", CFG_INT, "4", 1, 64, OFF(http_threads),
     SZ(http_threads), "HTTP threads (parse, validate, admit, answer)"},
    {"engine-threads", "HILANDER_ENGINE_THREADS", CFG_INT, NULL, 1, 64, OFF(engine_threads),
     SZ(engine_threads), "engine threads per job (default: max(1, cores / workers))"},
    {"queue-capacity", "HILANDER_QUEUE_CAPACITY", CFG_INT, "64", 1, 1000000, OFF(queue_capacity),
     SZ(queue_capacity), "queued jobs before submissions get 429"},
    {"max-body-bytes", "HILANDER_MAX_BODY_BYTES", CFG_SIZE, "1G", 1024, TIB, OFF(max_body_bytes),
     SZ(max_body_bytes), "largest request body (suffixes K, M, G, T)"},
    {"max-points", "HILANDER_MAX_POINTS", CFG_U64, "5000000", 2, 1000000000ULL, OFF(max_points),
     SZ(max_points), "most points per job"},
    {"max-dim", "HILANDER_MAX_DIM", CFG_U64, "4096", 1, 1048576, OFF(max_dim), SZ(max_dim),
     "largest embedding dimension"},
    {"result-ttl", "HILANDER_RESULT_TTL", CFG_U64, "86400", 1, 315360000ULL, OFF(result_ttl),
     SZ(result_ttl), "seconds a finished job and its result are kept"},
    {"store-max-bytes", "HILANDER_STORE_MAX_BYTES", CFG_SIZE, "2G", 1024 * 1024, 64 * TIB,
     OFF(store_max_bytes), SZ(store_max_bytes), "embedded store cap (LRU eviction past it)"},
    {"state-cache-bytes", "HILANDER_STATE_CACHE_BYTES", CFG_SIZE, "1G", 0, 64 * TIB,
     OFF(state_cache_bytes), SZ(state_cache_bytes),
     "decoded clustering states this replica keeps for assigns (LRU; 0 = none)"},
    {"body-pool-bytes", "HILANDER_BODY_POOL_BYTES", CFG_SIZE, "256M", 0, 64 * TIB,
     OFF(body_pool_bytes), SZ(body_pool_bytes),
     "large request-body buffers kept mapped for the next uploads (0 = none)"},
    {"redis", "HILANDER_REDIS", CFG_STR, "", 0, 0, OFF(redis), SZ(redis),
     "redis://host:port/db (unset = embedded in-memory store)"},
    {"model-dir", "HILANDER_MODEL_DIR", CFG_STR, "models", 1, 0, OFF(model_dir), SZ(model_dir),
     "directory whose *.hlm model files load at start"},
    {"default-model", "HILANDER_DEFAULT_MODEL", CFG_STR, "universal", 1, 0, OFF(default_model),
     SZ(default_model), "model used when a request names none ('none' = model-free)"},
    {"log-level", "HILANDER_LOG_LEVEL", CFG_LEVEL, "info", 0, 0, OFF(log_level), SZ(log_level),
     "debug, info, warn or error"},
    {"drain-seconds", "HILANDER_DRAIN_SECONDS", CFG_U64, "30", 0, 3600, OFF(drain_seconds),
     SZ(drain_seconds), "after SIGTERM, seconds before the listener closes"},
    {"port-file", "HILANDER_PORT_FILE", CFG_STR, "", 0, 0, OFF(port_file), SZ(port_file),
     "write the bound port to this file once listening"},
    {"openapi-file", "HILANDER_OPENAPI_FILE", CFG_STR, "", 0, 0, OFF(openapi_file),
     SZ(openapi_file), "serve this file at /openapi.yaml (unset = the built-in copy)"},
    {"replica", "HILANDER_REPLICA", CFG_STR, "", 0, 0, OFF(replica), SZ(replica),
     "this replica's name in the job stream and job objects (unset = hostname-pid)"},
    {"claim-timeout", "HILANDER_CLAIM_TIMEOUT", CFG_U64, "60", 1, 86400, OFF(claim_timeout),
     SZ(claim_timeout),
     "with --redis: seconds before another replica takes over a job whose "
     "replica stopped refreshing it"},
    {"max-attempts", "HILANDER_MAX_ATTEMPTS", CFG_INT, "3", 1, 100, OFF(max_attempts),
     SZ(max_attempts), "with --redis: runs of one job (claims) before it is marked failed"},
    {"api-keys", "HILANDER_API_KEYS", CFG_STR, "", 0, 0, OFF(api_keys), SZ(api_keys),
     "file of hashed API keys ('NAME sha256:HEX' lines; unset = no authentication)"},
    {"key-max-jobs", "HILANDER_KEY_MAX_JOBS", CFG_INT, "0", 0, 1000000, OFF(key_max_jobs),
     SZ(key_max_jobs), "queued + running jobs per API key before 429 (0 = no limit)"},
    {"key-rate", "HILANDER_KEY_RATE", CFG_INT, "0", 0, 1000000, OFF(key_rate), SZ(key_rate),
     "requests per second per API key and replica, bursts of as many (0 = no limit)"},
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static const char *level_names[] = {"debug", "info", "warn", "error"};

const char *srv_log_level_name(srv_log_level l)
{
    return (unsigned)l < 4 ? level_names[l] : "info";
}

static int fail(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses an unsigned decimal with an optional binary suffix (K, M, G, T, optionally
 * followed by "iB" or "B") when `suffix` is set. Returns 0 or -1. */
static int parse_u64(const char *s, int suffix, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    uint64_t mul = 1;
    if (suffix && *end != '\0') {
        switch (toupper((unsigned char)*end)) {
            case 'K':
                mul = 1024ULL;
                break;
            case 'M':
                mul = 1024ULL * 1024ULL;
                break;
            case 'G':
                mul = GIB;
                break;
            case 'T':
                mul = TIB;
                break;
            default:
                return -1;
        }
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
            end += strlen(end);
    }
    if (*end != '\0' || (v != 0 && mul > UINT64_MAX / v))
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

static int set_value(const cfg_row *r, const char *val, const char *origin, srv_config *c,
                     char *msg, size_t len)
{
    char *dst = (char *)c + r->off;
    uint64_t v = 0;
    switch (r->type) {
        case CFG_INT:
        case CFG_U64:
        case CFG_SIZE:
            if (parse_u64(val, r->type == CFG_SIZE, &v) != 0 || v < r->min || v > r->max)
                return fail(msg, len, "%s must be %s in [%" PRIu64 ", %" PRIu64 "], got '%s'",
                            origin, r->type == CFG_SIZE ? "a byte size" : "an integer", r->min,
                            r->max, val);
            if (r->type == CFG_INT)
                *(int *)(void *)dst = (int)v;
            else
                *(uint64_t *)(void *)dst = v;
            return 0;
        case CFG_STR:
            if (strlen(val) >= r->size)
                return fail(msg, len, "%s is longer than %zu bytes", origin, r->size - 1);
            if (r->min > 0 && val[0] == '\0')
                return fail(msg, len, "%s must not be empty", origin);
            memcpy(dst, val, strlen(val) + 1);
            return 0;
        case CFG_LEVEL:
            for (int i = 0; i < 4; i++) {
                if (strcmp(val, level_names[i]) == 0) {
                    *(srv_log_level *)(void *)dst = (srv_log_level)i;
                    return 0;
                }
            }
            return fail(msg, len, "%s must be one of debug, info, warn, error, got '%s'", origin,
                        val);
    }
    return fail(msg, len, "%s: unknown setting type", origin);
}

static const char *env_get(char **envp, const char *name)
{
    if (envp == NULL)
        return NULL;
    size_t nl = strlen(name);
    for (char **e = envp; *e != NULL; e++) {
        if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
            return *e + nl + 1;
    }
    return NULL;
}

static const char *default_for(const cfg_row *r, int ncores, int workers, char *buf, size_t len)
{
    if (r->def != NULL)
        return r->def;
    if (strcmp(r->name, "workers") == 0)
        snprintf(buf, len, "%d", ncores < 1 ? 1 : ncores);
    else /* engine-threads */
        snprintf(buf, len, "%d", ncores / workers < 1 ? 1 : ncores / workers);
    return buf;
}

static const cfg_row *find_row(const char *name, size_t n)
{
    for (size_t i = 0; i < N_ROWS; i++) {
        if (strlen(rows[i].name) == n && strncmp(rows[i].name, name, n) == 0)
            return &rows[i];
    }
    return NULL;
}

/* Looks at argv for a flag's value without applying it (the --workers default of
 * --engine-threads needs the final --workers first). Returns the value or NULL. */
static const char *flag_value(int argc, char **argv, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
            continue;
        if (a[2 + n] == '=')
            found = a + 3 + n;
        else if (a[2 + n] == '\0' && i + 1 < argc)
            found = argv[++i];
    }
    return found;
}

int srv_key_name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char ch = name[n];
        if (!isalnum((unsigned char)ch) && ch != '.' && ch != '_' && ch != '-')
            return 0;
    }
    return n > 0 && n < 64;
}

static int apply_flags(int argc, char **argv, srv_config *c, char *msg, size_t len)
{
    unsigned char seen[N_ROWS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->action = SRV_ACTION_HELP;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            c->action = SRV_ACTION_VERSION;
            continue;
        }
        if (strcmp(a, "--print-routes") == 0) {
            c->action = SRV_ACTION_PRINT_ROUTES;
            continue;
        }
        if (strcmp(a, "--hash-key") == 0 || strncmp(a, "--hash-key=", 11) == 0) {
            const char *name = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : "");
            if (!srv_key_name_ok(name))
                return fail(msg, len,
                            "--hash-key needs a key name of 1-63 characters from "
                            "A-Z a-z 0-9 . _ -");
            memcpy(c->hash_key_name, name, strlen(name) + 1);
            c->action = SRV_ACTION_HASH_KEY;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return fail(msg, len, "unexpected argument '%s' (settings are --name value)", a);
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        const cfg_row *r = find_row(a + 2, nlen);
        if (r == NULL)
            return fail(msg, len, "unknown option '%.*s' (see --help)", (int)(nlen + 2), a);
        const char *val = eq != NULL ? eq + 1 : NULL;
        if (val == NULL) {
            if (i + 1 >= argc)
                return fail(msg, len, "--%s needs a value", r->name);
            val = argv[++i];
        }
        size_t idx = (size_t)(r - rows);
        if (seen[idx]++)
            return fail(msg, len, "option --%s given twice", r->name);
        char origin[64];
        snprintf(origin, sizeof(origin), "--%s", r->name);
        if (set_value(r, val, origin, c, msg, len) != 0)
            return -1;
    }
    return 0;
}

int srv_config_parse(int argc, char **argv, char **envp, int ncores, srv_config *out, char *msg,
                     size_t msg_len)
{
    memset(out, 0, sizeof(*out));
    msg[0] = '\0';
    /* --workers first (flag > env > default): the --engine-threads default depends on it. */
    const cfg_row *wr = find_row("workers", 7);
    const char *wv = flag_value(argc, argv, "workers");
    const char *origin = "--workers";
    if (wv == NULL) {
        wv = env_get(envp, wr->env);
        origin = wr->env;
    }
    char buf[32];
    if (wv == NULL) {
        wv = default_for(wr, ncores, 1, buf, sizeof(buf));
        origin = "default workers";
    }
    if (set_value(wr, wv, origin, out, msg, msg_len) != 0)
        return -1;
    int workers = out->workers;
    for (size_t i = 0; i < N_ROWS; i++) {
        const cfg_row *r = &rows[i];
        const char *d = default_for(r, ncores, workers, buf, sizeof(buf));
        if (set_value(r, d, r->name, out, msg, msg_len) != 0)
            return -1;
        const char *ev = env_get(envp, r->env);
        if (ev != NULL && set_value(r, ev, r->env, out, msg, msg_len) != 0)
            return -1;
    }
    return apply_flags(argc, argv, out, msg, msg_len);
}

void srv_config_help(FILE *f, int ncores)
{
    fprintf(f, "usage: hilanderd [--name value | --name=value]...\n"
               "HTTP service for hierarchical clustering of embeddings (see openapi.yaml).\n"
               "Each setting also reads its environment variable; a flag beats the environment,\n"
               "which beats the default.\n\n");
    char buf[32];
    for (size_t i = 0; i < N_ROWS; i++) {
        const cfg_row *r = &rows[i];
        const char *d = default_for(r, ncores, ncores < 1 ? 1 : ncores, buf, sizeof(buf));
        if (r->def == NULL && strcmp(r->name, "engine-threads") == 0)
            d = "max(1, cores / workers)";
        else if (r->def == NULL)
            d = "cores";
        fprintf(f, "  --%-16s %-26s default %s\n      %s\n", r->name, r->env,
                d[0] != '\0' ? d : "(unset)", r->help);
    }
    fprintf(f, "\n  --help                print this help and exit\n"
               "  --version             print the version and exit\n"
               "  --print-routes        print the route table (METHOD PATH) and exit\n"
               "  --hash-key NAME       read an API key on stdin, print its --api-keys line\n");
}
