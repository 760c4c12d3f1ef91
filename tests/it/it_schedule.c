/* it_schedule: periodic schedules on the broker's test clock.
 *  A. --schedules FILE is loaded; bad cron / unknown zone / duplicate name
 *     are refused (naming the field); run-now; pause / resume / rm;
 *     overlap skip (a fire while the previous task is unfinished is
 *     skipped) vs allow; catchup none / last / all after a 5.5-hour jump of
 *     hourly schedules (hourly, so that the latest missed fire is 30 min
 *     late: a fire less than a minute late is on time, not missed).
 *  B. kill -9 of the broker at random points around fire times (a thread
 *     kills it at a random point within the round trip of the clock move
 *     that fires): after each restart the fire is either committed or fires
 *     again, and there is exactly one task per nominal fire time: the
 *     schedule's counter, last_fire_at, a fresh last_task_id per fire and
 *     the queue's task count (a double or a loss changes one of them), and
 *     finally one run per fire.
 *  C. Restarting with the same file keeps the schedule's state; a changed
 *     definition in the file replaces it.
 *  D. A weekday cron in Europe/Paris fires at 06:30 local on Thursday,
 *     Friday, then Monday. (DST tables: tests/unit/test_cron.c.)
 * The broker runs with --test-clock=START (2026-01-01T00:00:00Z, a
 * Thursday); after every restart the clock starts at START again and the
 * test moves it back to where it was. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define START 1767225600000LL /* 2026-01-01T00:00:00Z */
#define MIN_MS 60000LL
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define OUTSZ 65536
static char out[OUTSZ];

/* A copy of one schedule's listing. */
typedef struct {
    bool found;
    char cron[64], queue[65], overlap[16], catchup[16], tz[64];
    int paused;
    int64_t next_at, last_fire_at;
    taskq_id_t last_task_id;
    uint64_t fires, skipped;
} sched_t;

static sched_t get_sched(taskq_client_t *c, const char *name)
{
    sched_t r;
    memset(&r, 0, sizeof r);
    taskq_schedules_t *ss = NULL;
    H_OK(taskq_schedules(c, &ss));
    for (size_t i = 0; i < taskq_schedules_count(ss); i++) {
        const taskq_schedule_t *s = taskq_schedules_get(ss, i);
        if (!s || !s->name || strcmp(s->name, name) != 0)
            continue;
        r.found = true;
        snprintf(r.cron, sizeof r.cron, "%s", s->cron ? s->cron : "");
        snprintf(r.queue, sizeof r.queue, "%s", s->queue ? s->queue : "");
        snprintf(r.overlap, sizeof r.overlap, "%s", s->overlap ? s->overlap : "");
        snprintf(r.catchup, sizeof r.catchup, "%s", s->catchup ? s->catchup : "");
        snprintf(r.tz, sizeof r.tz, "%s", s->tz ? s->tz : "");
        r.paused = s->paused;
        r.next_at = s->next_at;
        r.last_fire_at = s->last_fire_at;
        r.last_task_id = s->last_task_id;
        r.fires = s->fires;
        r.skipped = s->skipped;
    }
    taskq_schedules_destroy(&ss);
    return r;
}

static sched_t must_sched(taskq_client_t *c, const char *name)
{
    sched_t s = get_sched(c, name);
    H_ASSERT(s.found, "schedule %s not listed", name);
    return s;
}

typedef struct {
    taskq_client_t *c;
    const char *name;
    int64_t next_at;  /* wait for this next_at (0: any) */
    uint64_t fires;   /* and at least this many fires */
} sched_wait_t;

static bool sched_reached(void *p)
{
    sched_wait_t *a = p;
    sched_t s = get_sched(a->c, a->name);
    return s.found && s.fires >= a->fires && (a->next_at == 0 || s.next_at == a->next_at);
}

static void wait_sched(taskq_client_t *c, const char *name, uint64_t fires, int64_t next_at)
{
    sched_wait_t a = {c, name, next_at, fires};
    char what[160];
    snprintf(what, sizeof what, "schedule %s: fires >= %llu, next_at %lld", name,
             (unsigned long long)fires, (long long)next_at);
    h_wait_for(sched_reached, &a, 10000, what);
}

static void add_sched(taskq_client_t *c, const char *name, const char *cron, const char *queue,
                      const char *overlap, const char *catchup, const void *args, size_t alen)
{
    taskq_schedule_t s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.cron = cron;
    s.task = args ? "test.append" : "test.square";
    static uint8_t one[16];
    if (!args) {
        alen = h_args_int(one, sizeof one, 1);
        args = one;
    }
    s.args = args;
    s.args_len = alen;
    s.queue = queue;
    s.overlap = overlap;
    s.catchup = catchup;
    taskq_err_t rc = taskq_schedule_add(c, &s);
    H_ASSERT(rc == TASKQ_OK, "schedule add %s '%s': %s '%s'", name, cron, taskq_err_name(rc),
             taskq_client_last_error(c));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    H_ASSERT(f, "create %s", path);
    fputs(text, f);
    fclose(f);
}

static void expect_total(taskq_client_t *c, const char *queue, uint64_t want, const char *what)
{
    uint64_t n = h_queue_total(c, queue);
    H_ASSERT(n == want, "%s: queue %s holds %llu tasks, expected %llu", what, queue,
             (unsigned long long)n, (unsigned long long)want);
}

/* ---- A ----------------------------------------------------------------------- */

static void behaviours(taskq_client_t *c, const char *ep, const char *skpath)
{
    /* the file's schedule, with every default */
    sched_t f = must_sched(c, "fromfile");
    H_ASSERT(strcmp(f.cron, "@hourly") == 0 && strcmp(f.queue, "fileq") == 0 &&
                 f.next_at == START + HOUR_MS && f.fires == 0 && !f.paused,
             "fromfile: cron '%s' queue '%s' next_at %lld fires %llu paused %d", f.cron,
             f.queue, (long long)f.next_at, (unsigned long long)f.fires, f.paused);
    H_ASSERT(strcmp(f.overlap, "skip") == 0 && strcmp(f.catchup, "last") == 0 &&
                 strcmp(f.tz, "UTC") == 0,
             "defaults: overlap '%s' catchup '%s' tz '%s', expected skip/last/UTC", f.overlap,
             f.catchup, f.tz);

    /* refusals name the problem */
    taskq_schedule_t bad;
    memset(&bad, 0, sizeof bad);
    bad.name = "bad";
    bad.task = "test.square";
    bad.cron = "0 25 * * *";
    taskq_err_t rc = taskq_schedule_add(c, &bad);
    H_ASSERT(rc == TASKQ_EINVAL && strstr(taskq_client_last_error(c), "hour"),
             "cron '0 25 * * *': %s '%s', expected EINVAL naming the hour field",
             taskq_err_name(rc), taskq_client_last_error(c));
    bad.cron = "@daily";
    bad.tz = "Mars/Olympus_Mons";
    rc = taskq_schedule_add(c, &bad);
    H_ASSERT(rc == TASKQ_EINVAL && strstr(taskq_client_last_error(c), "unknown time zone"),
             "tz Mars/Olympus_Mons: %s '%s'", taskq_err_name(rc), taskq_client_last_error(c));
    bad.tz = NULL;
    bad.name = "fromfile";
    rc = taskq_schedule_add(c, &bad);
    H_ASSERT(rc == TASKQ_EEXIST, "duplicate name: %s, expected EEXIST", taskq_err_name(rc));
    rc = taskq_schedule_ctl(c, "nosuch", "rm");
    H_ASSERT(rc == TASKQ_ENOTFOUND, "rm nosuch: %s", taskq_err_name(rc));
    int ex = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "add", "badcli", "--cron", "61 * * * *",
                       "--task", "test.square");
    H_ASSERT(ex != 0, "schedule add with minute 61: exit 0");
    h_lines_t l = h_read_lines(h_cli_last_log());
    bool named = false;
    for (size_t i = 0; i < l.n; i++)
        named |= strstr(l.line[i], "minute") != NULL;
    H_ASSERT(named, "schedule add --cron '61 * * * *': the error does not name the minute field "
             "(%s)", h_cli_last_log());
    h_lines_free(&l);
    H_ASSERT(!get_sched(c, "bad").found && !get_sched(c, "badcli").found, "refused schedule "
             "listed");

    const int64_t P = HOUR_MS; /* the period of the schedules below */
    uint8_t skargs[512];
    size_t sklen = h_args_fmt(skargs, sizeof skargs, "ss", skpath, "sk");
    add_sched(c, "sk", "0 * * * *", "skq", NULL, NULL, skargs, sklen); /* skip, last */
    add_sched(c, "cn", "0 * * * *", "cnq", "allow", "none", NULL, 0);
    add_sched(c, "cl", "0 * * * *", "clq", "allow", "last", NULL, 0);
    add_sched(c, "ca", "0 * * * *", "caq", "allow", "all", NULL, 0);
    add_sched(c, "ps", "0 * * * *", "psq", "allow", "last", NULL, 0);
    const char *names[] = {"sk", "cn", "cl", "ca", "ps"};
    for (int i = 0; i < 5; i++) {
        sched_t s = must_sched(c, names[i]);
        H_ASSERT(s.next_at == START + P && s.fires == 0, "%s: next_at %lld fires %llu",
                 names[i], (long long)s.next_at, (unsigned long long)s.fires);
    }

    /* on time: every schedule fires once */
    h_clock(c, 0, START + P);
    for (int i = 0; i < 5; i++)
        wait_sched(c, names[i], 1, START + 2 * P);
    for (int i = 0; i < 5; i++) {
        sched_t s = must_sched(c, names[i]);
        H_ASSERT(s.fires == 1 && s.last_fire_at == START + P,
                 "%s: fires %llu last_fire_at %lld", names[i], (unsigned long long)s.fires,
                 (long long)s.last_fire_at);
        taskq_task_t *t = h_status(c, &s.last_task_id);
        H_ASSERT(t && strcmp(t->schedule, names[i]) == 0, "%s: last task %s schedule '%s'",
                 names[i], h_id_str(&s.last_task_id), t ? t->schedule : "(not found)");
        taskq_task_destroy(&t);
    }
    expect_total(c, "cnq", 1, "catchup none, on time");

    /* run-now is extra: no nominal fire, next_at unchanged */
    taskq_id_t now_id;
    H_OK(taskq_schedule_run_now(c, "cl", &now_id));
    taskq_task_t *t = h_status(c, &now_id);
    H_ASSERT(t && strcmp(t->schedule, "cl") == 0 && strcmp(t->queue, "clq") == 0,
             "run-now task: schedule '%s' queue '%s'", t ? t->schedule : "?", t ? t->queue : "?");
    taskq_task_destroy(&t);
    sched_t s = must_sched(c, "cl");
    H_ASSERT(s.fires == 1 && s.next_at == START + 2 * P, "run-now changed fires (%llu) or "
             "next_at (%lld)", (unsigned long long)s.fires, (long long)s.next_at);
    expect_total(c, "clq", 2, "after run-now");

    H_OK(taskq_schedule_ctl(c, "ps", "pause"));
    H_ASSERT(must_sched(c, "ps").paused, "ps not paused");

    /* 5.5 hours pass at once: the fires at +2..+6 h were missed (the last one
     * 30 min late, past the broker's grace for a late fire) */
    h_clock(c, 0, START + 6 * P + 30 * MIN_MS);
    for (int i = 0; i < 4; i++)
        wait_sched(c, names[i], 0, START + 7 * P);
    s = must_sched(c, "ca");
    H_ASSERT(s.fires == 6 && s.last_fire_at == START + 6 * P,
             "catchup all: fires %llu last_fire_at %lld, expected 6 and +6 h",
             (unsigned long long)s.fires, (long long)s.last_fire_at);
    expect_total(c, "caq", 6, "catchup all");
    s = must_sched(c, "cl");
    H_ASSERT(s.fires == 2 && s.last_fire_at == START + 6 * P,
             "catchup last: fires %llu last_fire_at %lld, expected 2 and +6 h",
             (unsigned long long)s.fires, (long long)s.last_fire_at);
    expect_total(c, "clq", 3, "catchup last (1 + run-now + 1)");
    s = must_sched(c, "cn");
    H_ASSERT(s.fires == 1, "catchup none: fires %llu, expected 1", (unsigned long long)s.fires);
    expect_total(c, "cnq", 1, "catchup none");
    s = must_sched(c, "sk");
    H_ASSERT(s.fires == 1 && s.skipped >= 1, "overlap skip with the first task unfinished: "
             "fires %llu skipped %llu", (unsigned long long)s.fires, (unsigned long long)s.skipped);
    expect_total(c, "skq", 1, "overlap skip");
    s = must_sched(c, "ps");
    H_ASSERT(s.fires == 1, "paused schedule fired (%llu)", (unsigned long long)s.fires);
    expect_total(c, "psq", 1, "paused schedule");
    h_log("jump of 5.5 h: catchup all +5, last +1, none +0; overlap skip skipped; paused "
          "did not fire");

    /* overlap skip: once the previous task finished, the next fire runs */
    h_worker_t *w = h_worker_start(ep, 1, "-Q", "skq");
    taskq_queue_info_t qi;
    for (int64_t t0 = h_now_ms();; ) {
        H_ASSERT(h_now_ms() - t0 < 15000, "the sk task did not run");
        if (h_queue_info(c, "skq", &qi) && qi.counts[TASKQ_STATE_SUCCEEDED] == 1)
            break;
        usleep(20000);
    }
    uint64_t skipped = must_sched(c, "sk").skipped;
    h_clock(c, 0, START + 7 * P);
    wait_sched(c, "sk", 2, START + 8 * P);
    s = must_sched(c, "sk");
    H_ASSERT(s.skipped == skipped && s.last_fire_at == START + 7 * P,
             "sk after its task finished: skipped %llu (was %llu) last_fire_at %lld",
             (unsigned long long)s.skipped, (unsigned long long)skipped, (long long)s.last_fire_at);
    expect_total(c, "skq", 2, "overlap skip, previous finished");

    /* resume, then rm */
    H_OK(taskq_schedule_ctl(c, "ps", "resume"));
    H_ASSERT(!must_sched(c, "ps").paused, "ps still paused");
    h_clock(c, 0, START + 8 * P);
    wait_sched(c, "ps", 2, START + 9 * P);
    s = must_sched(c, "ps");
    expect_total(c, "psq", s.fires, "resumed schedule: one task per fire");
    H_OK(taskq_schedule_ctl(c, "ps", "rm"));
    H_ASSERT(!get_sched(c, "ps").found, "ps listed after rm");
    H_ASSERT(taskq_schedule_ctl(c, "ps", "rm") == TASKQ_ENOTFOUND, "second rm not ENOTFOUND");
    uint64_t ps_tasks = h_queue_total(c, "psq");
    h_clock(c, 0, START + 9 * P);
    wait_sched(c, "ca", 0, START + 10 * P); /* the broker has looked */
    expect_total(c, "psq", ps_tasks, "removed schedule");

    /* the CLI */
    ex = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "pause", "ca");
    H_ASSERT(ex == 0, "taskq schedule pause ca: exit %d", ex);
    H_ASSERT(must_sched(c, "ca").paused, "ca not paused by the CLI");
    ex = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "list", "--json");
    H_ASSERT(ex == 0 && strstr(out, "\"ca\"") && strstr(out, "\"fromfile\""),
             "schedule list --json: exit %d '%.300s'", ex, out);
    const char *rm[] = {"ca", "cl", "cn", "sk"};
    for (int i = 0; i < 4; i++) {
        ex = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "rm", rm[i]);
        H_ASSERT(ex == 0, "taskq schedule rm %s: exit %d", rm[i], ex);
    }
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- B: kill -9 around fire times --------------------------------------------- */

typedef struct {
    pid_t pid;
    long delay_us;
} killer_t;

static void *killer(void *p)
{
    killer_t *k = p;
    if (k->delay_us > 0)
        usleep((useconds_t)k->delay_us);
    kill(k->pid, SIGKILL);
    return NULL;
}

static long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(taskq_id_t));
}

static void kill_loop(h_broker_t *b, taskq_client_t **cp, int nkill)
{
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = *cp;
    char path[512];
    snprintf(path, sizeof path, "%s/kill.txt", h_tmpdir());
    uint8_t args[512];
    size_t alen = h_args_fmt(args, sizeof args, "ss", path, "kl");
    add_sched(c, "kl", "* * * * *", "klq", "allow", "all", args, alen);
    sched_t s = must_sched(c, "kl");
    const int64_t n1 = s.next_at;
    const int warm = 5;
    const int total = warm + nkill;
    taskq_id_t *ids = calloc((size_t)total, sizeof *ids);
    H_ASSERT(ids, "out of memory");
    long rtt_us = 0;
    int before = 0, after = 0;
    int64_t t_loop = h_now_ms();

    for (int k = 1; k <= total; k++) {
        const int64_t nominal = n1 + (k - 1) * MIN_MS;
        const int64_t target = nominal + rand() % 30000;
        if (k <= warm) {
            /* no kill: measure how long a firing clock move takes */
            long t0 = mono_us();
            h_clock(c, 0, target);
            long us = mono_us() - t0;
            rtt_us = rtt_us == 0 || us < rtt_us ? us : rtt_us; /* the fastest */
        } else {
            /* c is connected (it just read the schedule): the request goes
             * out at once; whether it is answered does not matter */
            taskq_client_set_timeout(c, rtt_us / 1000 + 20);
            killer_t kl = {h_broker_pid(b), rand() % (rtt_us + 1)};
            pthread_t th;
            H_ASSERT(pthread_create(&th, NULL, killer, &kl) == 0, "pthread_create");
            int64_t now = 0;
            (void)taskq_test_clock(c, 0, target, &now);
            pthread_join(th, NULL);
            taskq_client_destroy(cp);
            h_broker_kill(b, SIGKILL); /* reaps it */
            h_broker_restart(b);
            *cp = c = h_client(ep, 10000);
            s = must_sched(c, "kl");
            H_ASSERT(s.fires == (uint64_t)k || s.fires == (uint64_t)k - 1,
                     "fire %d (nominal %lld): after kill -9 (%ld us into the clock move) and "
                     "restart fires=%llu, expected %d or %d",
                     k, (long long)nominal, kl.delay_us, (unsigned long long)s.fires, k - 1, k);
            if (s.fires == (uint64_t)k)
                before++;
            else
                after++;
            h_clock(c, 0, target); /* the restarted clock began at START */
        }
        wait_sched(c, "kl", (uint64_t)k, nominal + MIN_MS);
        s = must_sched(c, "kl");
        H_ASSERT(s.fires == (uint64_t)k && s.last_fire_at == nominal,
                 "fire %d: fires %llu last_fire_at %lld, expected %d and %lld", k,
                 (unsigned long long)s.fires, (long long)s.last_fire_at, k, (long long)nominal);
        expect_total(c, "klq", (uint64_t)k, "one task per nominal fire time");
        ids[k - 1] = s.last_task_id;
        for (int i = 0; i < k - 1; i++)
            H_ASSERT(memcmp(&ids[i], &s.last_task_id, sizeof ids[i]) != 0,
                     "fire %d reuses the task id of fire %d", k, i + 1);
        taskq_task_t *t = h_status(c, &s.last_task_id);
        H_ASSERT(t && strcmp(t->schedule, "kl") == 0 && strcmp(t->queue, "klq") == 0 &&
                     t->state == TASKQ_STATE_QUEUED,
                 "fire %d: task %s %s schedule '%s'", k, h_id_str(&s.last_task_id),
                 t ? taskq_state_name(t->state) : "not found", t ? t->schedule : "");
        taskq_task_destroy(&t);
    }
    h_log("%d kills at 0..%ld us into a firing clock move (its round trip): fire committed "
          "before the kill %d times, fired after the restart %d times; %d fires, %d tasks, "
          "%lld ms",
          nkill, rtt_us, before, after, total, total, (long long)(h_now_ms() - t_loop));
    H_ASSERT(before > 0 && after > 0, "the kill points did not straddle the fire's commit "
             "(before %d, after %d): the test did not exercise both sides", before, after);
    qsort(ids, (size_t)total, sizeof *ids, cmp_id);
    for (int i = 1; i < total; i++)
        H_ASSERT(memcmp(&ids[i - 1], &ids[i], sizeof ids[i]) != 0, "duplicate task id");
    H_OK(taskq_schedule_ctl(c, "kl", "rm"));

    /* every fire's task runs once */
    h_worker_t *w = h_worker_start(ep, 2, "-Q", "klq");
    taskq_queue_info_t qi;
    for (int64_t t0 = h_now_ms();;) {
        H_ASSERT(h_now_ms() - t0 < 30000, "the %d kl tasks did not all run", total);
        if (h_queue_info(c, "klq", &qi) && qi.counts[TASKQ_STATE_SUCCEEDED] == (uint64_t)total)
            break;
        usleep(20000);
    }
    H_ASSERT(h_count_lines(path) == (size_t)total, "%zu runs of %d fires", h_count_lines(path),
             total);
    expect_total(c, "klq", (uint64_t)total, "after the runs");
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
    free(ids);
}

/* ---- C: the schedules file across restarts --------------------------------------- */

static void file_reload(h_broker_t *b, taskq_client_t **cp, const char *file, const char *fpath)
{
    const char *ep = h_broker_endpoint(b);
    sched_t before = must_sched(*cp, "fromfile");
    H_ASSERT(before.fires >= 1, "fromfile never fired over hours of test clock (fires %llu)",
             (unsigned long long)before.fires);
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGTERM);
    h_broker_restart(b);
    *cp = h_client(ep, 10000);
    sched_t after = must_sched(*cp, "fromfile");
    H_ASSERT(after.fires == before.fires && after.next_at == before.next_at &&
                 after.last_fire_at == before.last_fire_at,
             "unchanged file: fromfile reset on restart (fires %llu -> %llu, next_at %lld -> "
             "%lld)", (unsigned long long)before.fires, (unsigned long long)after.fires,
             (long long)before.next_at, (long long)after.next_at);

    char text[1024];
    snprintf(text, sizeof text,
             "[{\"name\": \"fromfile\", \"cron\": \"@daily\", \"task\": \"test.append\", "
             "\"args\": [\"%s\", \"file\"], \"queue\": \"fileq\"}]\n",
             fpath);
    write_file(file, text);
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGTERM);
    h_broker_restart(b);
    *cp = h_client(ep, 10000);
    after = must_sched(*cp, "fromfile");
    H_ASSERT(strcmp(after.cron, "@daily") == 0, "changed file: cron '%s', expected @daily",
             after.cron);
    h_log("schedules file: unchanged definition kept its state, a changed one replaced it");
}

/* ---- D: weekday cron in a zone ------------------------------------------------------ */

static void weekday_paris(taskq_client_t *c)
{
    taskq_schedule_t s;
    memset(&s, 0, sizeof s);
    s.name = "paris";
    s.cron = "30 6 * * mon-fri";
    s.task = "test.square";
    uint8_t one[16];
    s.args = one;
    s.args_len = h_args_int(one, sizeof one, 1);
    s.queue = "parisq";
    s.tz = "Europe/Paris";
    s.overlap = "allow";
    H_OK(taskq_schedule_add(c, &s));
    /* 06:30 in Paris (UTC+1 in winter) is 05:30Z */
    const int64_t fire[] = {START + 5 * HOUR_MS + 30 * MIN_MS,           /* Thu 1 Jan */
                            START + DAY_MS + 5 * HOUR_MS + 30 * MIN_MS,  /* Fri 2 Jan */
                            START + 4 * DAY_MS + 5 * HOUR_MS + 30 * MIN_MS}; /* Mon 5 Jan */
    sched_t p = must_sched(c, "paris");
    H_ASSERT(p.next_at == fire[0] && strcmp(p.tz, "Europe/Paris") == 0,
             "paris: next_at %lld tz '%s', expected %lld", (long long)p.next_at, p.tz,
             (long long)fire[0]);
    for (int i = 0; i < 2; i++) {
        h_clock(c, 0, fire[i]);
        wait_sched(c, "paris", (uint64_t)i + 1, fire[i + 1]);
        p = must_sched(c, "paris");
        H_ASSERT(p.last_fire_at == fire[i] && p.fires == (uint64_t)i + 1,
                 "paris fire %d: last_fire_at %lld fires %llu", i, (long long)p.last_fire_at,
                 (unsigned long long)p.fires);
    }
    expect_total(c, "parisq", 2, "weekday schedule");
    h_log("30 6 * * mon-fri Europe/Paris: Thu 05:30Z, Fri 05:30Z, next Mon 05:30Z");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(280);
    srand(h_seed());
    char file[512], fpath[512], skpath[512], clock_arg[64];
    snprintf(file, sizeof file, "%s/schedules.json", h_tmpdir());
    snprintf(fpath, sizeof fpath, "%s/file.txt", h_tmpdir());
    snprintf(skpath, sizeof skpath, "%s/sk.txt", h_tmpdir());
    char text[1024];
    snprintf(text, sizeof text,
             "[{\"name\": \"fromfile\", \"cron\": \"@hourly\", \"task\": \"test.append\", "
             "\"args\": [\"%s\", \"file\"], \"queue\": \"fileq\"}]\n",
             fpath);
    write_file(file, text);
    snprintf(clock_arg, sizeof clock_arg, "--test-clock=%lld", START);
    h_broker_t *b = h_broker_start(NULL, clock_arg, "--schedules", file, "--retention",
                                   "315360000");
    taskq_client_t *c = h_client(h_broker_endpoint(b), 10000);
    H_ASSERT(h_clock(c, 0, 0) == START, "the test clock does not start at %lld", START);

    behaviours(c, h_broker_endpoint(b), skpath);
    kill_loop(b, &c, h_sanitized() ? 100 : 200);
    file_reload(b, &c, file, fpath);
    weekday_paris(c);

    taskq_client_destroy(&c);
    return 0;
}
