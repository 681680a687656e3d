/* test_jobs.c - the job state machine (CAS over the store), ids, the bounded queue. */
#include "jobs.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

Suite *jobs_suite(void);

START_TEST(transition_table)
{
    static const int allowed[5][5] = {
        /* to:   queued running succeeded failed canceled */
        /* queued    */ {0, 1, 0, 0, 1},
        /* running   */ {0, 0, 1, 1, 1},
        /* succeeded */ {0, 0, 0, 0, 0},
        /* failed    */ {0, 0, 0, 0, 0},
        /* canceled  */ {0, 0, 0, 0, 0},
    };
    for (int f = 0; f < 5; f++) {
        for (int t = 0; t < 5; t++)
            ck_assert_int_eq(srv_job_can_transition((srv_job_status)f, (srv_job_status)t),
                             allowed[f][t]);
        ck_assert_int_eq(srv_job_status_parse(srv_job_status_name((srv_job_status)f)), f);
    }
    ck_assert_int_eq(srv_job_status_parse("done"), -1);
    ck_assert(srv_job_status_terminal(SRV_JOB_CANCELED));
    ck_assert(!srv_job_status_terminal(SRV_JOB_RUNNING));
}
END_TEST

static srv_store *store_with(const char *id, const char *status)
{
    srv_store *s;
    ck_assert_int_eq(srv_store_mem_new(1 << 20, &s), HL_OK);
    srv_field f[1] = {{"status", status}};
    ck_assert_int_eq(s->ops->job_create(s, id, f, 1), HL_OK);
    return s;
}

static const char *status_of(srv_store *s, const char *id, char *buf)
{
    srv_record r;
    ck_assert_int_eq(s->ops->job_get(s, id, &r), HL_OK);
    strcpy(buf, srv_record_get(&r, "status"));
    srv_record_free(&r);
    return buf;
}

START_TEST(cas_transitions)
{
    char b[32];
    srv_store *s = store_with("j", "queued");
    srv_job *j;
    ck_assert_int_eq(srv_job_new(&j), HL_OK);
    srv_field extra[1] = {{"started_at", "t"}};
    ck_assert_int_eq(srv_job_transition(s, "j", j, "queued", SRV_JOB_RUNNING, extra, 1, 0), HL_OK);
    ck_assert_int_eq(atomic_load(&j->status), SRV_JOB_RUNNING);
    ck_assert_str_eq(status_of(s, "j", b), "running");
    /* A lost race: the record is no longer queued. */
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "queued", SRV_JOB_CANCELED, NULL, 0, 60),
                     HL_BUSY);
    /* Not allowed by the machine at all. */
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "running", SRV_JOB_QUEUED, NULL, 0, 0),
                     HL_INVAL);
    ck_assert_int_eq(srv_job_transition(s, "j", j, "running", SRV_JOB_SUCCEEDED, NULL, 0, 60),
                     HL_OK);
    /* Terminal states never change. */
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "succeeded", SRV_JOB_FAILED, NULL, 0, 60),
                     HL_INVAL);
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "running", SRV_JOB_FAILED, NULL, 0, 60),
                     HL_BUSY);
    ck_assert_str_eq(status_of(s, "j", b), "succeeded");
    ck_assert_int_eq(srv_job_transition(s, "gone", NULL, "queued", SRV_JOB_RUNNING, NULL, 0, 0),
                     HL_NOTFOUND);
    srv_job_release(j);
    s->ops->destroy(s);
}
END_TEST

/* Cancel and start race for a queued job: exactly one wins. */
START_TEST(cancel_vs_start)
{
    char b[32];
    srv_store *s = store_with("j", "queued");
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "queued", SRV_JOB_CANCELED, NULL, 0, 60),
                     HL_OK);
    ck_assert_int_eq(srv_job_transition(s, "j", NULL, "queued", SRV_JOB_RUNNING, NULL, 0, 0),
                     HL_BUSY);
    ck_assert_str_eq(status_of(s, "j", b), "canceled");
    s->ops->destroy(s);
}
END_TEST

START_TEST(ids)
{
    char seen[200][32];
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(srv_job_id(seen[i]), HL_OK);
        ck_assert_uint_eq(strlen(seen[i]), 28);
        ck_assert(strncmp(seen[i], "j_", 2) == 0);
        ck_assert_uint_eq(strspn(seen[i] + 2, "0123456789abcdefghjkmnpqrstvwxyz"), 26);
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(seen[i], seen[k]);
    }
}
END_TEST

START_TEST(queue)
{
    srv_jobq *q;
    ck_assert_int_eq(srv_jobq_new(2, &q), HL_OK);
    srv_job *a, *b, *c;
    srv_job_new(&a);
    srv_job_new(&b);
    srv_job_new(&c);
    ck_assert_int_eq(srv_jobq_push(q, a), HL_OK);
    ck_assert_int_eq(srv_jobq_reserve(q), HL_OK);
    ck_assert_int_eq(srv_jobq_reserve(q), HL_BUSY); /* full counting the reservation */
    ck_assert_int_eq(srv_jobq_push(q, c), HL_BUSY);
    ck_assert_int_eq(srv_jobq_push_reserved(q, b), HL_OK);
    ck_assert_uint_eq(srv_jobq_length(q), 2);
    ck_assert_int_eq(srv_jobq_remove(q, c), 0);
    srv_job *p = srv_jobq_pop(q);
    ck_assert_ptr_eq(p, a); /* FIFO */
    srv_job_release(p);
    ck_assert_int_eq(srv_jobq_push(q, c), HL_OK);
    ck_assert_int_eq(srv_jobq_remove(q, b), 1);
    ck_assert_uint_eq(srv_jobq_length(q), 1);
    ck_assert_int_eq(srv_jobq_reserve(q), HL_OK);
    srv_jobq_unreserve(q);
    srv_job **left;
    size_t n;
    srv_jobq_close(q, &left, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_eq(left[0], c);
    srv_job_release(left[0]);
    free(left);
    ck_assert_ptr_null(srv_jobq_pop(q)); /* closed and empty: no blocking */
    ck_assert_int_eq(srv_jobq_push(q, a), HL_UNAVAILABLE);
    ck_assert_int_eq(srv_jobq_reserve(q), HL_UNAVAILABLE);
    srv_jobq_free(q);
    srv_job_release(a);
    srv_job_release(b);
    srv_job_release(c);
}
END_TEST

START_TEST(table)
{
    srv_jobs *t;
    ck_assert_int_eq(srv_jobs_new(&t), HL_OK);
    srv_job *js[100];
    for (int i = 0; i < 100; i++) {
        srv_job_new(&js[i]);
        ck_assert_int_eq(srv_jobs_add(t, js[i]), HL_OK);
    }
    ck_assert_uint_eq(srv_jobs_count(t), 100);
    srv_job *f = srv_jobs_find(t, js[42]->id);
    ck_assert_ptr_eq(f, js[42]);
    srv_job_release(f);
    srv_jobs_remove(t, js[42]->id);
    ck_assert_ptr_null(srv_jobs_find(t, js[42]->id));
    ck_assert_uint_eq(srv_jobs_count(t), 99);
    for (int i = 0; i < 100; i++)
        srv_job_release(js[i]);
    srv_jobs_free(t);
}
END_TEST

Suite *jobs_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("jobs");
    tcase_add_test(tc, transition_table);
    tcase_add_test(tc, cas_transitions);
    tcase_add_test(tc, cancel_vs_start);
    tcase_add_test(tc, ids);
    tcase_add_test(tc, queue);
    tcase_add_test(tc, table);
    suite_add_tcase(s, tc);
    return s;
}
