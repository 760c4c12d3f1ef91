/* render.c - JSON documents and tables of the CLI (see render.h). */
#include "render.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

const char *iso_time(int64_t unix_ms, char *buf, size_t sz)
{
    if (unix_ms <= 0) {
        buf[0] = '\0';
        return buf;
    }
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sz, "%s.%03dZ", tmp, (int)(unix_ms % 1000));
    return buf;
}

json_t *json_time(int64_t unix_ms)
{
    char buf[40];
    return unix_ms > 0 ? json_string(iso_time(unix_ms, buf, sizeof buf)) : json_null();
}

/* A string, or null when empty. */
static json_t *json_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

json_t *json_id_or_null(const taskq_id_t *id)
{
    if (taskq_id_is_zero(id))
        return json_null();
    char s[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, s);
    return json_string(s);
}

const char *format_rate(double per_second, char *buf, size_t sz)
{
    if (!(per_second > 0))
        snprintf(buf, sz, "-");
    else if (per_second >= 1)
        snprintf(buf, sz, "%g/s", per_second);
    else if (per_second * 60 >= 1)
        snprintf(buf, sz, "%g/m", per_second * 60);
    else
        snprintf(buf, sz, "%g/h", per_second * 3600);
    return buf;
}

const char *format_age(int64_t ms, char *buf, size_t sz)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, sz, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, sz, "%.1fs", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(buf, sz, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, sz, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(buf, sz, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
    return buf;
}

void short_id(const taskq_id_t *id, char out[9])
{
    /* bytes 8..11 carry the per-process counter of a UUIDv7 taskq id */
    char full[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, full);
    memcpy(out, full + 19, 4);
    memcpy(out + 4, full + 24, 4);
    out[8] = '\0';
}

/* ---- tasks ------------------------------------------------------------- */

json_t *result_json(const taskq_task_t *t)
{
    if (!t->result)
        return json_null();
    json_t *j = NULL;
    int lossy = 0;
    taskq_err_t e = json_from_msgpack_bytes(t->result, t->result_len, &j, &lossy);
    if (e != TASKQ_OK) {
        char *b = json_base64(t->result, t->result_len);
        fprintf(stderr, "taskq: note: the result is not valid msgpack; shown as base64\n");
        j = b ? json_string(b) : json_null();
        free(b);
    } else if (lossy) {
        fprintf(stderr, "taskq: note: %d msgpack value(s) without a JSON form shown as null or real\n",
                lossy);
    }
    return j;
}

json_t *task_json(const taskq_task_t *t)
{
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "state", json_string(taskq_state_name(t->state)));
    json_object_set_new(o, "queue", json_str_or_null(t->queue));
    json_object_set_new(o, "priority", json_integer(t->priority));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "max_attempts", json_integer(t->max_attempts));
    json_object_set_new(o, "failures", json_integer(t->failures));
    json_object_set_new(o, "code", json_str_or_null(t->code));
    json_t *p = json_object();
    json_object_set_new(p, "current", json_integer((json_int_t)t->progress_current));
    json_object_set_new(p, "total", json_integer((json_int_t)t->progress_total));
    json_object_set_new(p, "message", json_string(t->progress_message));
    json_object_set_new(o, "progress", p);
    json_object_set_new(o, "result", t->state == TASKQ_STATE_SUCCEEDED ? result_json(t) : json_null());
    /* failed: the error; revoked: the reason (e.g. upstream_failed) */
    bool has_error = t->state == TASKQ_STATE_FAILED ||
                     (t->state == TASKQ_STATE_REVOKED && t->error && t->error[0]);
    json_object_set_new(o, "error", has_error ? json_string(t->error) : json_null());
    json_object_set_new(o, "worker", json_str_or_null(t->worker));
    json_object_set_new(o, "child_pid", json_integer(t->child_pid));
    json_object_set_new(o, "submitted_at", json_time(t->submitted_at));
    json_object_set_new(o, "started_at", json_time(t->started_at));
    json_object_set_new(o, "finished_at", json_time(t->finished_at));
    json_object_set_new(o, "due_at", json_time(t->due_at));
    json_object_set_new(o, "expires_at", json_time(t->expires_at));
    json_object_set_new(o, "schedule", json_str_or_null(t->schedule));
    json_object_set_new(o, "group_id", json_id_or_null(&t->group_id));
    json_object_set_new(o, "parent_id", json_id_or_null(&t->parent_id));
    json_object_set_new(o, "rerun_of", json_id_or_null(&t->rerun_of));
    json_object_set_new(o, "rerun_by", json_id_or_null(&t->rerun_by));
    json_object_set_new(o, "unique_key", json_str_or_null(t->unique_key));
    return o;
}

static void kv_time(FILE *f, const char *key, int64_t ms)
{
    char b[40];
    fprintf(f, "%-13s %s\n", key, ms > 0 ? iso_time(ms, b, sizeof b) : "-");
}

void print_task_human(FILE *f, const taskq_task_t *t)
{
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, id);
    fprintf(f, "%-13s %s\n", "id:", id);
    fprintf(f, "%-13s %s\n", "name:", t->name);
    fprintf(f, "%-13s %s\n", "state:", taskq_state_name(t->state));
    fprintf(f, "%-13s %s\n", "queue:", t->queue[0] ? t->queue : "-");
    fprintf(f, "%-13s %d\n", "priority:", t->priority);
    fprintf(f, "%-13s %u/%u\n", "attempts:", t->attempts, t->max_attempts);
    if (t->code[0])
        fprintf(f, "%-13s %u (last: %s)\n", "failures:", t->failures, t->code);
    else
        fprintf(f, "%-13s %u\n", "failures:", t->failures);
    if (t->progress_total > 0)
        fprintf(f, "%-13s %llu/%llu (%.0f%%) %s\n", "progress:",
                (unsigned long long)t->progress_current, (unsigned long long)t->progress_total,
                100.0 * (double)t->progress_current / (double)t->progress_total, t->progress_message);
    else if (t->progress_current > 0 || t->progress_message[0])
        fprintf(f, "%-13s %llu %s\n", "progress:", (unsigned long long)t->progress_current,
                t->progress_message);
    else
        fprintf(f, "%-13s -\n", "progress:");
    if (t->state == TASKQ_STATE_SUCCEEDED) {
        json_t *r = result_json(t);
        char *s = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT);
        fprintf(f, "%-13s %s\n", "result:", s ? s : "?");
        free(s);
        json_decref(r);
    }
    if (t->state == TASKQ_STATE_FAILED)
        fprintf(f, "%-13s %s\n", "error:", t->error);
    if (t->state == TASKQ_STATE_REVOKED && t->error[0])
        fprintf(f, "%-13s %s\n", "reason:", t->error);
    fprintf(f, "%-13s %s\n", "worker:", t->worker[0] ? t->worker : "-");
    fprintf(f, "%-13s %d\n", "child_pid:", (int)t->child_pid);
    kv_time(f, "submitted_at:", t->submitted_at);
    kv_time(f, "started_at:", t->started_at);
    kv_time(f, "finished_at:", t->finished_at);
    if (t->due_at > 0)
        kv_time(f, "due_at:", t->due_at);
    if (t->expires_at > 0)
        kv_time(f, "expires_at:", t->expires_at);
    if (t->schedule[0])
        fprintf(f, "%-13s %s\n", "schedule:", t->schedule);
    const struct {
        const char *key;
        const taskq_id_t *id;
    } links[] = {{"group:", &t->group_id}, {"parent:", &t->parent_id},
                 {"rerun_of:", &t->rerun_of}, {"rerun_by:", &t->rerun_by}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (taskq_id_is_zero(links[i].id))
            continue;
        char id2[TASKQ_ID_STRLEN + 1];
        taskq_id_format(links[i].id, id2);
        fprintf(f, "%-13s %s\n", links[i].key, id2);
    }
    if (t->unique_key && t->unique_key[0])
        fprintf(f, "%-13s %s\n", "unique_key:", t->unique_key);
}

/* ---- attempts ---------------------------------------------------------- */

json_t *attempt_json(const taskq_attempt_t *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "attempt", json_integer(a->attempt));
    json_object_set_new(o, "worker", json_str_or_null(a->worker));
    json_object_set_new(o, "child_pid", json_integer(a->child_pid));
    json_object_set_new(o, "started_at", json_time(a->started_at));
    json_object_set_new(o, "finished_at", json_time(a->finished_at));
    json_object_set_new(o, "duration_s", a->started_at > 0 && a->finished_at >= a->started_at
                                             ? json_real((double)(a->finished_at - a->started_at) / 1000.0)
                                             : json_null());
    json_object_set_new(o, "state", json_string(a->state));
    json_object_set_new(o, "code", json_str_or_null(a->code));
    json_object_set_new(o, "message", json_string(a->message));
    return o;
}

#define ATTEMPT_ROW "%7s  %-24s %8s  %-24s %9s  %-12s %-16s %s\n"

void print_attempt_header(FILE *f)
{
    fprintf(f, ATTEMPT_ROW, "ATTEMPT", "WORKER", "PID", "START", "DURATION", "STATE", "CODE",
            "MESSAGE");
}

void print_attempt_row(FILE *f, const taskq_attempt_t *a, int64_t now_ms)
{
    char n[16], pid[16], start[40], dur[32];
    snprintf(n, sizeof n, "%u", a->attempt);
    snprintf(pid, sizeof pid, "%d", (int)a->child_pid);
    if (a->started_at <= 0) {
        snprintf(dur, sizeof dur, "-");
    } else if (a->finished_at >= a->started_at) {
        format_age(a->finished_at - a->started_at, dur, sizeof dur);
    } else { /* still running: time so far, marked with '+' */
        format_age(now_ms - a->started_at, dur, sizeof dur - 1);
        strcat(dur, "+");
    }
    fprintf(f, ATTEMPT_ROW, n, a->worker[0] ? a->worker : "-", a->child_pid ? pid : "-",
            a->started_at > 0 ? iso_time(a->started_at, start, sizeof start) : "-", dur, a->state,
            a->code[0] ? a->code : "-", a->message);
}

/* ---- queues ------------------------------------------------------------ */

json_t *queue_json(const taskq_queue_info_t *q, const taskq_limit_t *limit)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(q->name));
    json_object_set_new(o, "paused", json_boolean(q->paused));
    json_object_set_new(o, "max_pending",
                        q->max_pending ? json_integer((json_int_t)q->max_pending) : json_null());
    json_t *c = json_object();
    for (int s = 0; s < TASKQ_NSTATES; s++)
        json_object_set_new(c, taskq_state_name(s), json_integer((json_int_t)q->counts[s]));
    json_object_set_new(o, "counts", c);
    json_object_set_new(o, "oldest_queued_s", json_real((double)q->oldest_queued_ms / 1000.0));
    json_object_set_new(o, "slots", json_integer(q->slots));
    json_object_set_new(o, "limit", limit ? limit_json(limit) : json_null());
    return o;
}

#define QUEUE_ROW "%-20s %-6s %11s %9s %9s %9s %9s %9s %9s %9s %8s %5s\n"

void print_queue_header(FILE *f)
{
    fprintf(f, QUEUE_ROW, "QUEUE", "PAUSED", "MAX_PENDING", "SCHEDULED", "QUEUED", "RUNNING",
            "RETRYING", "SUCCEEDED", "FAILED", "EXPIRED", "OLDEST", "SLOTS");
}

void print_queue_row(FILE *f, const taskq_queue_info_t *q)
{
    static const int cols[7] = {TASKQ_STATE_SCHEDULED, TASKQ_STATE_QUEUED,    TASKQ_STATE_RUNNING,
                                TASKQ_STATE_RETRYING,  TASKQ_STATE_SUCCEEDED, TASKQ_STATE_FAILED,
                                TASKQ_STATE_EXPIRED};
    char n[7][24], mp[24], age[24], slots[16];
    for (int i = 0; i < 7; i++)
        snprintf(n[i], sizeof n[i], "%llu", (unsigned long long)q->counts[cols[i]]);
    if (q->max_pending)
        snprintf(mp, sizeof mp, "%llu", (unsigned long long)q->max_pending);
    else
        snprintf(mp, sizeof mp, "-");
    if (q->oldest_queued_ms > 0)
        format_age(q->oldest_queued_ms, age, sizeof age);
    else
        snprintf(age, sizeof age, "-");
    snprintf(slots, sizeof slots, "%u", q->slots);
    fprintf(f, QUEUE_ROW, q->name, q->paused ? "yes" : "no", mp, n[0], n[1], n[2], n[3], n[4],
            n[5], n[6], age, slots);
}

/* ---- limits ------------------------------------------------------------ */

json_t *limit_json(const taskq_limit_t *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(l->key));
    json_object_set_new(o, "rate", json_real(l->rate));
    json_object_set_new(o, "burst", json_integer(l->burst));
    json_object_set_new(o, "max_running", json_integer(l->max_running));
    json_object_set_new(o, "running", json_integer(l->running));
    json_object_set_new(o, "tokens", json_real(l->tokens));
    json_object_set_new(o, "paused_until", json_time(l->paused_until));
    return o;
}

#define LIMIT_ROW "%-32s %10s %6s %11s %7s %8s  %s\n"

void print_limit_header(FILE *f)
{
    fprintf(f, LIMIT_ROW, "KEY", "RATE", "BURST", "MAX_RUNNING", "RUNNING", "TOKENS",
            "PAUSED_UNTIL");
}

void print_limit_row(FILE *f, const taskq_limit_t *l)
{
    char rate[32], burst[16], mr[16], run[16], tok[32], until[40];
    format_rate(l->rate, rate, sizeof rate);
    snprintf(burst, sizeof burst, l->burst ? "%u" : "-", l->burst);
    snprintf(mr, sizeof mr, l->max_running ? "%u" : "-", l->max_running);
    snprintf(run, sizeof run, "%u", l->running);
    if (l->rate > 0)
        snprintf(tok, sizeof tok, "%.2f", l->tokens);
    else
        snprintf(tok, sizeof tok, "-");
    fprintf(f, LIMIT_ROW, l->key, rate, burst, mr, run, tok,
            l->paused_until > 0 ? iso_time(l->paused_until, until, sizeof until) : "-");
}

/* ---- schedules --------------------------------------------------------- */

json_t *schedule_json(const taskq_schedule_t *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "cron", json_string(s->cron));
    json_object_set_new(o, "tz", json_string(s->tz && s->tz[0] ? s->tz : "UTC"));
    json_object_set_new(o, "task", json_string(s->task));
    json_t *args = NULL;
    if (!s->args || s->args_len == 0 || json_from_msgpack_bytes(s->args, s->args_len, &args, NULL) != TASKQ_OK)
        args = s->args_len ? json_null() : json_array();
    json_object_set_new(o, "args", args);
    json_object_set_new(o, "queue", json_str_or_null(s->queue));
    json_object_set_new(o, "priority", json_integer(s->has_priority ? s->priority : 5));
    json_object_set_new(o, "overlap", json_string(s->overlap && s->overlap[0] ? s->overlap : "skip"));
    json_object_set_new(o, "catchup", json_string(s->catchup && s->catchup[0] ? s->catchup : "last"));
    json_object_set_new(o, "max_attempts", json_integer(s->max_attempts));
    json_object_set_new(o, "paused", json_boolean(s->paused));
    json_object_set_new(o, "next_at", json_time(s->next_at));
    json_object_set_new(o, "last_fire_at", json_time(s->last_fire_at));
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s->last_task_id, id);
    json_object_set_new(o, "last_task_id",
                        taskq_id_is_zero(&s->last_task_id) ? json_null() : json_string(id));
    json_object_set_new(o, "fires", json_integer((json_int_t)s->fires));
    json_object_set_new(o, "skipped", json_integer((json_int_t)s->skipped));
    return o;
}

#define SCHED_ROW "%-20s %-16s %-16s %-24s %-12s %4s %-6s %-24s %-24s %6s %7s\n"

void print_schedule_header(FILE *f)
{
    fprintf(f, SCHED_ROW, "NAME", "CRON", "TZ", "TASK", "QUEUE", "PRIO", "PAUSED", "NEXT", "LAST",
            "FIRES", "SKIPPED");
}

void print_schedule_row(FILE *f, const taskq_schedule_t *s)
{
    char prio[8], next[40], last[40], fires[24], skipped[24];
    snprintf(prio, sizeof prio, "%d", s->has_priority ? s->priority : 5);
    snprintf(fires, sizeof fires, "%llu", (unsigned long long)s->fires);
    snprintf(skipped, sizeof skipped, "%llu", (unsigned long long)s->skipped);
    fprintf(f, SCHED_ROW, s->name, s->cron, s->tz && s->tz[0] ? s->tz : "UTC", s->task,
            s->queue && s->queue[0] ? s->queue : "-", prio, s->paused ? "yes" : "no",
            s->next_at > 0 ? iso_time(s->next_at, next, sizeof next) : "-",
            s->last_fire_at > 0 ? iso_time(s->last_fire_at, last, sizeof last) : "-", fires,
            skipped);
}

/* ---- groups, waits, dead letters ----------------------------------------- */

json_t *group_json(const taskq_group_info_t *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "group", json_id_or_null(&g->id));
    json_object_set_new(o, "total", json_integer((json_int_t)g->total));
    json_object_set_new(o, "succeeded", json_integer((json_int_t)g->succeeded));
    json_object_set_new(o, "failed", json_integer((json_int_t)g->failed));
    json_object_set_new(o, "remaining", json_integer((json_int_t)g->remaining));
    json_object_set_new(o, "on_fail", json_string(g->on_fail ? g->on_fail : "fail"));
    json_object_set_new(o, "callback", json_id_or_null(&g->callback));
    json_object_set_new(o, "callback_state", g->callback_state >= 0
                                                 ? json_string(taskq_state_name(g->callback_state))
                                                 : json_null());
    return o;
}

void print_group_human(FILE *f, const taskq_group_info_t *g)
{
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&g->id, id);
    fprintf(f, "%-13s %s\n", "group:", id);
    fprintf(f, "%-13s %llu/%llu done (%llu succeeded, %llu failed), %llu remaining\n",
            "progress:", (unsigned long long)(g->succeeded + g->failed),
            (unsigned long long)g->total, (unsigned long long)g->succeeded,
            (unsigned long long)g->failed, (unsigned long long)g->remaining);
    fprintf(f, "%-13s %s\n", "on_fail:", g->on_fail ? g->on_fail : "fail");
    if (taskq_id_is_zero(&g->callback)) {
        fprintf(f, "%-13s -\n", "callback:");
    } else {
        taskq_id_format(&g->callback, id);
        fprintf(f, "%-13s %s (%s)\n", "callback:", id,
                g->callback_state >= 0 ? taskq_state_name(g->callback_state) : "unknown");
    }
}

const char *format_wait_bar(char *buf, size_t sz, uint64_t done, uint64_t total, uint64_t failed,
                            int64_t elapsed_ms)
{
    enum { W = 20 };
    char bar[W + 1];
    size_t full = total ? (size_t)((double)done / (double)total * W) : W;
    if (full > W)
        full = W;
    for (size_t i = 0; i < W; i++)
        bar[i] = i < full ? '#' : '.';
    bar[W] = '\0';
    snprintf(buf, sz, "[%s] %llu/%llu done, %llu failed, %.1f s", bar, (unsigned long long)done,
             (unsigned long long)total, (unsigned long long)failed,
             (double)(elapsed_ms > 0 ? elapsed_ms : 0) / 1000.0);
    return buf;
}

#define FAILED_ROW "%-36s  %-24s %-12s %-24s %8s  %-16s %s\n"

void print_failed_header(FILE *f)
{
    fprintf(f, FAILED_ROW, "ID", "NAME", "QUEUE", "FINISHED", "ATTEMPTS", "CODE", "ERROR");
}

void print_failed_row(FILE *f, const taskq_task_t *t)
{
    char id[TASKQ_ID_STRLEN + 1], fin[40], att[24];
    taskq_id_format(&t->id, id);
    snprintf(att, sizeof att, "%u/%u", t->attempts, t->max_attempts);
    fprintf(f, FAILED_ROW, id, t->name, t->queue[0] ? t->queue : "-",
            t->finished_at > 0 ? iso_time(t->finished_at, fin, sizeof fin) : "-", att,
            t->code[0] ? t->code : "-", t->error);
}
