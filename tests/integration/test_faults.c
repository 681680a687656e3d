/*
 * test_faults.c - process-level fault tests: two hilanderd replicas and one redis-server on
 * loopback ports (no containers). One case per run, chosen by name:
 *
 *   kill9      kill -9 the replica running a long job: the other reclaims it after the claim
 *              timeout and finishes it; its labels equal the CLI's; every accepted job
 *              succeeds (none lost).
 *   redis      stop and restart redis-server (with its append-only file): readyz turns 503 on
 *              both replicas and back to 200; submissions and GETs get 503 meanwhile; the jobs
 *              accepted before the outage complete.
 *   sigterm    SIGTERM one replica under a bounded load of submissions and GETs through both
 *              (clients retry with the same Idempotency-Key on connection errors and 503s):
 *              no client request fails, every job succeeds, the replica exits 0.
 *   attempts   kill -9 whichever replica runs a job, each time it runs: after --max-attempts
 *              claims the job ends failed with a reason naming the limit.
 *   apikeys    API keys across two replicas: 401 without or with a wrong key, 200 with a good
 *              one, health routes open, the per-key job limit shared through Redis (429), the
 *              per-key rate (429 + Retry-After), and no key or hash in any log.
 *
 * Each case prints a "figures" line (bench/RESULTS.md "Faults") and "N passed, N failed".
 * Usage: test_faults HILANDERD HILANDER PROJECT_DIR CASE. Every process started here is killed
 * on exit, on a fatal signal and on the alarm; every loop is bounded in count and time.
 */
#include "faults_util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CASE_SECONDS                                                                               \
    300 /* the alarm; a case takes under 40 s in a release build, up to 2 min under TSan */

static const char *const common[] = {"--workers", "1", "--claim-timeout", "3", "--drain-seconds",
                                     "0",         NULL};

/* Two replicas "ra" and "rb" on one Redis. */
static int two_replicas(server *a, server *b, const redis_proc *rp, const char *const *extra)
{
    if (replica_up(a, "a", "ra", rp->url, extra) != 0 ||
        replica_up(b, "b", "rb", rp->url, extra) != 0) {
        CHECK(0, "a replica did not start");
        return -1;
    }
    return 0;
}

/* SIGTERM, exit 0, clean log. */
static void stop_clean(server *s)
{
    kill(s->pid, SIGTERM);
    int rc = reap(s, 60);
    CHECK(rc == 0, "%s: exit code %d after SIGTERM", s->log, rc);
    CHECK(log_clean(s->log), "sanitizer report or error line in %s", s->log);
}

/* Waits until the job's record says running; copies the replica running it. */
static int wait_running(const int *ports, int nports, const char *id, double seconds,
                        char replica[64])
{
    for (double t0 = now(); now() - t0 < seconds; sleep_ms(20)) {
        json_t *o = job_object(ports[0], id);
        if (o == NULL && nports > 1)
            o = job_object(ports[1], id);
        const char *st = o != NULL ? jstr(o, "status") : "";
        int running = strcmp(st, "running") == 0;
        int ended = strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0;
        if (running)
            snprintf(replica, 64, "%s", jstr(o, "replica"));
        json_decref(o);
        if (running)
            return 0;
        if (ended)
            return -1;
    }
    return -1;
}

/* The CLI's labels for an .npy file, compared with the job's (?format=npy). */
static int same_labels_as_cli(int port, const char *id, const char *npy_path)
{
    char out[600], cmd[1600], url[128];
    snprintf(out, sizeof(out), "%s.labels.npy", npy_path);
    snprintf(cmd, sizeof(cmd), "'%s' cluster --in '%s' --model none --threads 1 --out '%s' --quiet",
             g_cli, npy_path, out);
    if (system(cmd) != 0)
        return 0;
    size_t cn;
    char *cli = read_file(out, &cn);
    snprintf(url, sizeof(url), "/v1/jobs/%s/result?format=npy", id);
    hresp r;
    GET(port, url, &r);
    int same = r.status == 200 && cli != NULL && r.len == cn && memcmp(r.body, cli, cn) == 0;
    hfree(&r);
    free(cli);
    return same;
}

/* ---------------------------------------------------------------- kill -9 */

/* Prefer: wait on a replica whose only worker is busy: the other replica runs the job and
 * this one answers 200 with the result once the job record says succeeded. */
static void check_wait_elsewhere(int port)
{
    static const char body[] = "{\"embeddings\": [[1,0],[0.9,0.1],[0,1],[0.1,0.9]]}";
    const char *wait[] = {"Prefer: wait=30", NULL};
    hresp r;
    double t0 = now();
    http(port, "POST", "/v1/cluster", "application/json", body, strlen(body), wait, 0, &r);
    char v[64];
    CHECK(r.status == 200 && json_array_size(json_object_get(r.json, "labels")) == 4 &&
              header(&r, "Preference-Applied", v, sizeof(v)) != NULL,
          "Prefer: wait for a job of another replica: %ld %.200s", r.status, r.body);
    CHECK(now() - t0 < 10, "the wait took %.1f s", now() - t0);
    hfree(&r);
}

static void case_kill9(void)
{
    redis_proc rp;
    server a, b;
    if (redis_up(&rp, "redis", 0) != 0 || two_replicas(&a, &b, &rp, common) != 0) {
        CHECK(0, "setup failed");
        return;
    }
    int ports[2] = {a.port, b.port};
    client_stats cs = {0};
    char path[512], big[64], got[32], rep[64];
    snprintf(path, sizeof(path), "%s/big.npy", g_tmp);
    size_t n = 50000, d = 48, len;
    void *npy;
    float *x = blobs_f32(n, d, 1);
    CHECK(write_npy(path, x, n, d, &npy, &len) == 0, "write %s", path);
    free(x);
    CHECK(submit_retry(ports, 2, 0, npy, len, "kill9-big", NULL, 3, big, &cs) == 202, "submit");
    CHECK(wait_running(ports, 2, big, 30, rep) == 0, "the long job never ran");
    char ids[6][64];
    size_t sn = 3000, sd = 32;
    for (int i = 0; i < 5; i++) { /* more accepted jobs, through both replicas */
        float *y = blobs_f32(sn, sd, (uint32_t)(10 + i));
        void *ynpy;
        size_t ylen;
        write_npy(NULL, y, sn, sd, &ynpy, &ylen);
        char key[32];
        snprintf(key, sizeof(key), "kill9-%d", i);
        CHECK(submit_retry(ports, 2, i % 2, ynpy, ylen, key, NULL, 3, ids[i], &cs) == 202,
              "submit %d", i);
        free(y);
        free(ynpy);
    }
    snprintf(ids[5], sizeof(ids[5]), "%s", big);
    server *busy = strcmp(rep, "ra") == 0 ? &a : &b;
    check_wait_elsewhere(busy->port);
    json_t *o = job_object(ports[0], big);
    CHECK(o != NULL && strcmp(jstr(o, "status"), "running") == 0, "the long job ended too soon");
    json_decref(o);
    server *victim = strcmp(rep, "ra") == 0 ? &a : &b, *survivor = victim == &a ? &b : &a;
    const char *surv_name = victim == &a ? "rb" : "ra";
    double t_kill = now();
    kill9(victim);
    int sp[1] = {survivor->port};
    double t_reclaimed = -1;
    for (double t0 = now(); now() - t0 < 60 && t_reclaimed < 0; sleep_ms(50)) {
        json_t *j = job_object(sp[0], big);
        if (j != NULL && strcmp(jstr(j, "replica"), surv_name) == 0)
            t_reclaimed = now() - t_kill;
        json_decref(j);
    }
    CHECK(t_reclaimed > 0, "the survivor never reclaimed the long job");
    int succeeded = 0, attempts = 0;
    for (int i = 0; i < 6; i++) {
        int at = 0;
        poll_done(sp, 1, ids[i], 90, got, rep, &at, &cs);
        succeeded += strcmp(got, "succeeded") == 0;
        if (i == 5)
            attempts = at;
        CHECK(strcmp(got, "succeeded") == 0, "job %s ended '%s'", ids[i], got);
    }
    double t_done = now() - t_kill;
    CHECK(attempts == 2, "the long job took %d attempts, expected 2", attempts);
    CHECK(same_labels_as_cli(sp[0], big, path), "the reclaimed job's labels differ from the CLI's");
    printf("figures kill9: submitted=6 succeeded=%d lost=%d reclaim_s=%.1f all_done_s=%.1f "
           "long_job_attempts=%d claim_timeout_s=3\n",
           succeeded, 6 - succeeded, t_reclaimed, t_done, attempts);
    stop_clean(survivor);
    free(npy);
    redis_down(&rp);
}

/* ---------------------------------------------------------------- Redis outage */

static int ready_is(int port, long want)
{
    hresp r;
    long st = GET(port, "/readyz", &r);
    hfree(&r);
    return st == want;
}

/* Polls readyz on both ports until both answer `want`; returns the seconds it took or -1. */
static double both_ready_is(const int *ports, long want, double seconds)
{
    double t0 = now();
    for (; now() - t0 < seconds; sleep_ms(50))
        if (ready_is(ports[0], want) && ready_is(ports[1], want))
            return now() - t0;
    return -1;
}

static void case_redis(void)
{
    redis_proc rp;
    server a, b;
    if (redis_up(&rp, "redis", 1) != 0 || two_replicas(&a, &b, &rp, common) != 0) {
        CHECK(0, "setup failed");
        return;
    }
    int ports[2] = {a.port, b.port};
    client_stats cs = {0};
    char ids[6][64], got[32];
    size_t n = 6000, d = 32;
    for (int i = 0; i < 6; i++) {
        float *x = blobs_f32(n, d, (uint32_t)(20 + i));
        void *npy;
        size_t len;
        write_npy(NULL, x, n, d, &npy, &len);
        char key[32];
        snprintf(key, sizeof(key), "outage-%d", i);
        CHECK(submit_retry(ports, 2, i % 2, npy, len, key, NULL, 3, ids[i], &cs) == 202,
              "submit %d", i);
        free(x);
        free(npy);
    }
    int unfinished = 0;
    for (int i = 0; i < 6; i++) {
        json_t *o = job_object(ports[i % 2], ids[i]);
        const char *st = o != NULL ? jstr(o, "status") : "";
        unfinished += strcmp(st, "queued") == 0 || strcmp(st, "running") == 0;
        json_decref(o);
    }
    double t_down = now();
    redis_down(&rp);
    double to_503 = both_ready_is(ports, 503, 15);
    CHECK(to_503 >= 0, "readyz did not turn 503 on both replicas");
    static const char small[] = "{\"embeddings\": [[1,0],[0,1],[1,1]]}";
    hresp r;
    http(a.port, "POST", "/v1/cluster", "application/json", small, strlen(small), NULL, 0, &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", ids[0]);
    GET(b.port, path, &r);
    CHECK_PROBLEM(&r, 503, "unavailable");
    hfree(&r);
    sleep_ms(1500); /* an outage of a few seconds */
    CHECK(redis_again(&rp) == 0, "redis-server did not restart");
    double outage = now() - t_down;
    double to_200 = both_ready_is(ports, 200, 30);
    CHECK(to_200 >= 0, "readyz did not come back to 200 on both replicas");
    int succeeded = 0;
    for (int i = 0; i < 6; i++) {
        poll_done(ports, 2, ids[i], 90, got, NULL, NULL, &cs);
        succeeded += strcmp(got, "succeeded") == 0;
        CHECK(strcmp(got, "succeeded") == 0, "job %s ended '%s'", ids[i], got);
    }
    double all_done = now() - t_down;
    printf("figures redis: submitted=6 unfinished_at_outage=%d succeeded=%d lost=%d "
           "readyz_503_after_s=%.1f outage_s=%.1f readyz_200_after_restart_s=%.1f "
           "all_done_after_outage_start_s=%.1f\n",
           unfinished, succeeded, 6 - succeeded, to_503, outage, to_200, all_done);
    stop_clean(&a);
    stop_clean(&b);
    redis_down(&rp);
}

/* ---------------------------------------------------------------- SIGTERM under load */

#define SIG_CLIENTS 2
#define SIG_JOBS    8 /* per client */

typedef struct sig_client {
    int ports[2];
    int index;
    client_stats cs;
    char ids[SIG_JOBS][64];
    int submitted;
    atomic_int *progress;
} sig_client;

static void *sig_client_main(void *arg)
{
    sig_client *c = arg;
    size_t n = 2500, d = 32;
    for (int i = 0; i < SIG_JOBS; i++) {
        float *x = blobs_f32(n, d, (uint32_t)(100 * c->index + i));
        void *npy;
        size_t len;
        write_npy(NULL, x, n, d, &npy, &len);
        char key[48];
        snprintf(key, sizeof(key), "sigterm-%d-%d", c->index, i);
        long st =
            submit_retry(c->ports, 2, c->index + i, npy, len, key, NULL, 40, c->ids[i], &c->cs);
        c->submitted += st == 202 || st == 200;
        atomic_fetch_add(c->progress, 1);
        free(x);
        free(npy);
        char got[32];
        if (i % 2 == 1) /* GETs through both replicas while the load goes on */
            poll_done(c->ports, 2, c->ids[i - 1], 0.3, got, NULL, NULL, &(client_stats){0});
        sleep_ms(150);
    }
    return NULL;
}

static void case_sigterm(void)
{
    redis_proc rp;
    server a, b;
    const char *const ex[] = {"--workers", "1", "--claim-timeout", "3", "--drain-seconds",
                              "2",         NULL};
    if (redis_up(&rp, "redis", 0) != 0 || two_replicas(&a, &b, &rp, ex) != 0) {
        CHECK(0, "setup failed");
        return;
    }
    /* A long job first: the replica that runs it gets the SIGTERM, so the job is still running
     * when the drain ends and must be handed back and finished by the other replica. */
    int ports[2] = {a.port, b.port};
    client_stats lcs = {0};
    size_t ln = 60000, ld = 48, llen;
    void *lnpy;
    float *lx = blobs_f32(ln, ld, 5);
    write_npy(NULL, lx, ln, ld, &lnpy, &llen);
    free(lx);
    char long_id[64], rep[64] = "";
    CHECK(submit_retry(ports, 2, 0, lnpy, llen, "sigterm-long", NULL, 3, long_id, &lcs) == 202,
          "submit the long job");
    free(lnpy);
    CHECK(wait_running(ports, 2, long_id, 30, rep) == 0, "the long job never ran");
    server *victim = strcmp(rep, "rb") == 0 ? &b : &a, *other = victim == &a ? &b : &a;
    atomic_int progress;
    atomic_init(&progress, 0);
    sig_client cl[SIG_CLIENTS];
    pthread_t t[SIG_CLIENTS];
    for (int i = 0; i < SIG_CLIENTS; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].ports[0] = a.port;
        cl[i].ports[1] = b.port;
        cl[i].index = i;
        cl[i].progress = &progress;
        pthread_create(&t[i], NULL, sig_client_main, &cl[i]);
    }
    for (double t0 = now(); now() - t0 < 60 && atomic_load(&progress) < 4;)
        sleep_ms(20);
    double t_term = now();
    kill(victim->pid, SIGTERM);
    int rc = reap(victim, 60);
    double exit_s = now() - t_term;
    CHECK(rc == 0, "the terminated replica exited with %d", rc);
    CHECK(log_clean(victim->log), "sanitizer report or error line in %s", victim->log);
    for (int i = 0; i < SIG_CLIENTS; i++)
        pthread_join(t[i], NULL);
    client_stats total = {0};
    int jobs = 0, succeeded = 0;
    for (int i = 0; i < SIG_CLIENTS; i++) {
        for (int k = 0; k < SIG_JOBS; k++) {
            char got[32] = "";
            jobs++;
            if (cl[i].ids[k][0] != '\0')
                poll_done(cl[i].ports, 2, cl[i].ids[k], 90, got, NULL, NULL, &cl[i].cs);
            succeeded += strcmp(got, "succeeded") == 0;
            CHECK(strcmp(got, "succeeded") == 0, "job %d/%d ('%s') ended '%s'", i, k, cl[i].ids[k],
                  got);
        }
        total.requests += cl[i].cs.requests;
        total.retries += cl[i].cs.retries;
        total.failed += cl[i].cs.failed;
        total.undocumented += cl[i].cs.undocumented;
    }
    char got[32] = "";
    int other_port[1] = {other->port}, attempts = 0;
    poll_done(other_port, 1, long_id, 90, got, rep, &attempts, &lcs);
    jobs++;
    succeeded += strcmp(got, "succeeded") == 0;
    CHECK(strcmp(got, "succeeded") == 0, "the long job ended '%s'", got);
    CHECK(strcmp(rep, victim == &a ? "rb" : "ra") == 0, "the long job ended on %s", rep);
    CHECK(attempts == 1, "the handed-back run counted: %d attempts", attempts);
    total.failed += lcs.failed;
    CHECK(total.failed == 0, "%d client requests failed", total.failed);
    CHECK(total.undocumented == 0, "%d answers with an undocumented status", total.undocumented);
    int handed_back = log_count(victim->log, "job handed back to the stream");
    CHECK(handed_back >= 1, "the terminated replica handed nothing back");
    printf("figures sigterm: jobs=%d succeeded=%d lost=%d requests=%d retried=%d failed=%d "
           "undocumented=%d exit_code=%d exit_after_s=%.1f handed_back=%d drain_s=2\n",
           jobs, succeeded, jobs - succeeded, total.requests, total.retries, total.failed,
           total.undocumented, rc, exit_s, handed_back);
    stop_clean(other);
    redis_down(&rp);
}

/* ---------------------------------------------------------------- the attempt limit */

static void case_attempts(void)
{
    redis_proc rp;
    server s[2];
    const char *const ex[] = {
        "--workers", "1", "--claim-timeout", "2", "--max-attempts", "3", "--drain-seconds",
        "0",         NULL};
    if (redis_up(&rp, "redis", 0) != 0 || two_replicas(&s[0], &s[1], &rp, ex) != 0) {
        CHECK(0, "setup failed");
        return;
    }
    client_stats cs = {0};
    size_t n = 30000, d = 48, len;
    void *npy;
    float *x = blobs_f32(n, d, 7);
    write_npy(NULL, x, n, d, &npy, &len);
    free(x);
    char id[64], rep[64];
    int ports[2] = {s[0].port, s[1].port};
    CHECK(submit_retry(ports, 2, 0, npy, len, "attempts", NULL, 3, id, &cs) == 202, "submit");
    int kills = 0, restarts = 0;
    double t0 = now();
    json_t *last = NULL;
    while (now() - t0 < 100 && kills < 6) {
        if (wait_running(ports, 2, id, 30, rep) != 0)
            break; /* ended (failed, we expect) */
        int k = strcmp(rep, "ra") == 0 ? 0 : 1;
        kill9(&s[k]);
        kills++;
        char dir[16];
        snprintf(dir, sizeof(dir), "%s%d", k == 0 ? "a" : "b", ++restarts);
        if (replica_up(&s[k], dir, k == 0 ? "ra" : "rb", rp.url, ex) != 0) {
            CHECK(0, "replica %s did not restart", rep);
            break;
        }
        ports[k] = s[k].port;
        for (double t1 = now(); now() - t1 < 30; sleep_ms(50)) { /* until the next claim */
            json_t *o = job_object(ports[1 - k], id);
            int at = o != NULL ? (int)json_integer_value(json_object_get(o, "attempts")) : 0;
            const char *st = o != NULL ? jstr(o, "status") : "";
            int moved = at > kills || strcmp(st, "failed") == 0 || strcmp(st, "succeeded") == 0;
            json_decref(o);
            if (moved)
                break;
        }
    }
    char got[32];
    poll_done(ports, 2, id, 30, got, NULL, NULL, &cs);
    last = job_object(ports[0], id);
    const char *detail = jstr(json_object_get(last, "error"), "detail");
    CHECK(strcmp(got, "failed") == 0, "the job ended '%s', expected failed", got);
    CHECK(kills == 3, "%d kills, expected 3 (one per attempt)", kills);
    CHECK(strstr(detail, "--max-attempts 3") != NULL, "the reason does not name the limit: '%s'",
          detail);
    printf("figures attempts: max_attempts=3 kills=%d final=%s seconds=%.1f reason=\"%s\"\n", kills,
           got, now() - t0, detail);
    json_decref(last);
    free(npy);
    stop_clean(&s[0]);
    stop_clean(&s[1]);
    redis_down(&rp);
}

/* ---------------------------------------------------------------- API keys */

#define KEY_ALICE "alice-secret-0123456789abcdef"
#define KEY_BOB   "bob-secret-abcdefghijklmnop"
#define KEY_CAROL "carol-secret-ZYXWVUTSRQPONML"

/* Appends the --hash-key line of a key to the file; 0 on success. */
static int add_key(const char *file, const char *name, const char *key)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "printf '%%s\\n' '%s' | '%s' --hash-key %s >> '%s'", key, g_daemon,
             name, file);
    return system(cmd) == 0 ? 0 : -1;
}

static long get_with(int port, const char *path, const char *key, hresp *r)
{
    char h[160];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", key);
    const char *hdrs[] = {h, NULL};
    return http(port, "GET", path, NULL, NULL, 0, key != NULL ? hdrs : NULL, 0, r);
}

static void apikeys_open_routes(int port)
{
    static const char *open[] = {"/livez", "/readyz", "/metrics", "/openapi.yaml"};
    hresp r;
    for (int i = 0; i < 4; i++) {
        CHECK(GET(port, open[i], &r) == 200, "%s without a key: %ld", open[i], r.status);
        hfree(&r);
    }
    CHECK(http(port, "OPTIONS", "/v1/cluster", NULL, NULL, 0, NULL, 0, &r) == 204, "OPTIONS %ld",
          r.status);
    hfree(&r);
    char v[256];
    get_with(port, "/v1/models", NULL, &r);
    CHECK_PROBLEM(&r, 401, "unauthorized");
    CHECK(header(&r, "WWW-Authenticate", v, sizeof(v)) && strncmp(v, "Bearer", 6) == 0,
          "no WWW-Authenticate");
    hfree(&r);
    get_with(port, "/v1/models", "not-a-known-key-000000", &r);
    CHECK_PROBLEM(&r, 401, "unauthorized");
    hfree(&r);
    static const char small[] = "{\"embeddings\": [[1,0],[0,1],[1,1]]}";
    http(port, "POST", "/v1/cluster", "application/json", small, strlen(small), NULL, 0, &r);
    CHECK_PROBLEM(&r, 401, "unauthorized");
    hfree(&r);
    CHECK(get_with(port, "/v1/models", KEY_ALICE, &r) == 200, "good key: %ld", r.status);
    hfree(&r);
}

static double g_cancel_s; /* DELETE through the other replica until canceled */

static void apikeys_limits(const int *ports)
{
    client_stats cs = {0};
    size_t n = 30000, d = 48, len;
    float *x = blobs_f32(n, d, 3);
    void *npy;
    write_npy(NULL, x, n, d, &npy, &len);
    free(x);
    const char *alice[] = {"Authorization: Bearer " KEY_ALICE, NULL};
    const char *bob[] = {"Authorization: Bearer " KEY_BOB, NULL};
    char id1[64], id2[64], id3[64];
    CHECK(submit_retry(ports, 1, 0, npy, len, "k-a1", alice, 1, id1, &cs) == 202, "alice 1");
    hresp r;
    char h[200];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", KEY_ALICE);
    const char *hd[] = {h, NULL};
    http(ports[1], "POST", "/v1/cluster?k=12", "application/x-npy", npy, len, hd, 0, &r);
    CHECK_PROBLEM(&r, 429, "queue-full"); /* the limit holds across replicas */
    hfree(&r);
    CHECK(submit_retry(ports + 1, 1, 0, npy, len, "k-b1", bob, 1, id2, &cs) == 202, "bob");
    /* Cancel through the replica that does not run the job. */
    char path[128], rep[64] = "";
    CHECK(wait_running(ports, 2, id1, 30, rep) == 0, "alice's job never ran");
    int other = strcmp(rep, "ra") == 0 ? ports[1] : ports[0];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id1);
    double t_cancel = now();
    CHECK(http(other, "DELETE", path, NULL, NULL, 0, hd, 0, &r) == 202,
          "cancel alice's job through the other replica: %ld", r.status);
    hfree(&r);
    char got[32];
    poll_done(ports, 2, id1, 30, got, NULL, NULL, &(client_stats){0});
    g_cancel_s = now() - t_cancel;
    CHECK(strcmp(got, "canceled") == 0, "alice's job ended '%s'", got);
    CHECK(g_cancel_s < 10, "the cancel took %.1f s", g_cancel_s);
    CHECK(submit_retry(ports, 2, 1, npy, len, "k-a2", alice, 1, id3, &cs) == 202, "alice again");
    snprintf(path, sizeof(path), "/v1/jobs/%s", id3);
    http(ports[0], "DELETE", path, NULL, NULL, 0, hd, 0, &r);
    hfree(&r);
    free(npy);
}

static void case_apikeys(void)
{
    char file[512], bad[512], err[2048];
    snprintf(file, sizeof(file), "%s/keys", g_tmp);
    CHECK(add_key(file, "alice", KEY_ALICE) == 0 && add_key(file, "bob", KEY_BOB) == 0 &&
              add_key(file, "carol", KEY_CAROL) == 0,
          "hilanderd --hash-key failed");
    snprintf(bad, sizeof(bad), "%s/badkeys.txt", g_tmp);
    FILE *f = fopen(bad, "w");
    fputs("# ok\nalice sha256:1234\n", f);
    fclose(f);
    const char *bad_args[] = {"--api-keys", bad, "--default-model", "none", NULL};
    int rc = start_fails("badkeys-start", bad_args, err, sizeof(err));
    CHECK(rc == 2 && strstr(err, "badkeys.txt:2") != NULL, "bad key file: exit %d, '%s'", rc, err);
    redis_proc rp;
    server a, b;
    const char *const ex[] = {"--workers",       "1", "--api-keys", file,
                              "--key-max-jobs",  "1", "--key-rate", "20",
                              "--drain-seconds", "0", NULL};
    if (redis_up(&rp, "redis", 0) != 0 || two_replicas(&a, &b, &rp, ex) != 0) {
        CHECK(0, "setup failed");
        return;
    }
    int ports[2] = {a.port, b.port};
    g_fault_auth = "Authorization: Bearer " KEY_BOB; /* for the polling helpers */
    apikeys_open_routes(a.port);
    apikeys_limits(ports);
    int ok = 0, limited = 0;
    for (int i = 0; i < 60; i++) { /* far over 20/s: the bucket empties */
        hresp r;
        long st = get_with(b.port, "/v1/models", KEY_CAROL, &r);
        char v[32];
        ok += st == 200;
        if (st == 429 && is_problem(&r, 429, "rate-limited") &&
            header(&r, "Retry-After", v, sizeof(v)))
            limited++;
        hfree(&r);
    }
    CHECK(limited > 0 && ok >= 20, "rate: %d ok, %d limited", ok, limited);
    stop_clean(&a);
    stop_clean(&b);
    const char *secrets[] = {KEY_ALICE, KEY_BOB, KEY_CAROL, "sha256:"};
    int leaks = 0;
    for (int i = 0; i < 4; i++)
        leaks += log_count(a.log, secrets[i]) + log_count(b.log, secrets[i]);
    size_t kn;
    char *keys = read_file(file, &kn);
    for (char *p = keys; p != NULL && (p = strstr(p, "sha256:")) != NULL; p += 7) {
        char hex[65];
        snprintf(hex, sizeof(hex), "%.64s", p + 7);
        leaks += log_count(a.log, hex) + log_count(b.log, hex);
    }
    free(keys);
    CHECK(leaks == 0, "a key or its hash appears %d times in the logs", leaks);
    int named = log_count(a.log, "\"key\":\"alice\"") + log_count(b.log, "\"key\":\"alice\"");
    CHECK(named > 0, "the key's name is not in the request logs");
    printf("figures apikeys: rate_ok=%d rate_limited=%d leaks=%d cross_replica_cancel_s=%.2f\n", ok,
           limited, leaks, g_cancel_s);
    redis_down(&rp);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_faults HILANDERD HILANDER PROJECT_DIR CASE\n");
        return 2;
    }
    g_daemon = argv[1];
    g_cli = argv[2];
    g_root = argv[3];
    const char *which = argv[4];
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/hltest.faults.XXXXXX");
    if (mkdtemp(g_tmp) == NULL)
        return 2;
    atexit(kill_servers);
    signal(SIGALRM, on_fatal);
    signal(SIGSEGV, on_fatal);
    signal(SIGABRT, on_fatal);
    signal(SIGINT, on_fatal);
    signal(SIGTERM, on_fatal);
    signal(SIGPIPE, SIG_IGN);
    alarm(CASE_SECONDS);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double t0 = now();
    if (strcmp(which, "kill9") == 0)
        case_kill9();
    else if (strcmp(which, "redis") == 0)
        case_redis();
    else if (strcmp(which, "sigterm") == 0)
        case_sigterm();
    else if (strcmp(which, "attempts") == 0)
        case_attempts();
    else if (strcmp(which, "apikeys") == 0)
        case_apikeys();
    else
        CHECK(0, "unknown case '%s'", which);
    printf("case %s took %.1f s\n", which, now() - t0);
    kill_servers();
    curl_global_cleanup();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
    if (getenv("HL_KEEP") == NULL && g_failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_tmp);
    else if (g_failed > 0)
        fprintf(stderr, "logs kept in %s\n", g_tmp);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
