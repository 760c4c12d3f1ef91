/* checker.c - the at-least-once checker; see checker.h and the rules in
 * docs/reliability.md. Events are parsed into compact records (strings
 * interned), sorted by time, then replayed per task id. */
#define _GNU_SOURCE
#include "checker.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX 20 /* violations printed per kind */
#define IDLEN 36

enum {
    K_LOST,
    K_UNEXPECTED,
    K_MULTI_TERMINAL,
    K_STALE_ACCEPTED,
    K_OVERLAP,
    K_DUP_UNEXPLAINED,
    K_MISMATCH,
    K_COUNT
};
static const char *const KIND_NAME[K_COUNT] = {"lost",    "unexpected",      "multi_terminal",
                                               "stale_accepted", "overlap", "dup_unexplained",
                                               "mismatch"};

typedef enum {
    E_INVOKE, E_ACK, E_SFAIL, E_STIMEOUT,
    E_START, E_ACCEPT, E_DISPATCH, E_REQUEUE, E_TERMINAL, E_STALE, E_REPEAT, E_NODE_DEAD,
    E_BUSY, E_STOP,
    E_HELLO, E_CHILD_DIED, E_TIME_LIMIT, E_DONE_SENT, E_DONE_ACKED,
    E_EXEC_START, E_EXEC_END,
    E_FAULT,
} ev_kind_t;

typedef struct {
    int64_t t;
    uint32_t file, line; /* tie-break: file order, then line order */
    int32_t pid;         /* the line's pid */
    int32_t task;        /* task index, -1 if none */
    uint32_t attempt;
    uint32_t s1, s2;     /* interned: node, reason, state, fault kind, target, how */
    int32_t cpid;        /* child pid (child_died, time_limit) */
    uint64_t hash;
    uint8_t kind, ok;
    uint8_t tstate;      /* terminal: the state number (2, 3, 6 revoked, 7 expired) */
} ev_t;

typedef struct {
    char id[IDLEN + 1];
    bool invoked, acked, in_db;
    int db_state;
    uint32_t db_attempts;
    uint64_t db_hash;
    char *name;
    void *args, *result;
    size_t args_len, result_len;
    uint32_t *evs; /* event indices in time order */
    size_t nev, cap;
} task_t;

struct checker {
    ev_t *ev;
    size_t nev, cap;
    task_t *tasks;
    size_t ntasks, tcap;
    int32_t *slots; /* open addressing: id -> task index, -1 empty */
    size_t nslots;
    char **str;     /* interned strings */
    size_t nstr, scap;
    uint32_t nfiles;
    size_t malformed;
    uint32_t *aux; /* after sorting: hello, child_died and fault events */
    size_t naux, auxcap;
    checker_verify_fn verify;
    void *verify_arg;
    /* report */
    size_t count[K_COUNT];
    char *msgs[K_COUNT][REPORT_MAX];
};

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * elem);
    if (!q) {
        fprintf(stderr, "checker: out of memory\n");
        abort(); /* test code */
    }
    *cap = c;
    return q;
}

static uint32_t intern(checker_t *c, const char *s)
{
    for (size_t i = 0; i < c->nstr; i++) /* few distinct strings: nodes, reasons */
        if (strcmp(c->str[i], s) == 0)
            return (uint32_t)i;
    c->str = grow(c->str, &c->scap, c->nstr + 1, sizeof *c->str);
    c->str[c->nstr] = strdup(s);
    return (uint32_t)c->nstr++;
}

static const char *S(const checker_t *c, uint32_t i) { return c->str[i]; }

static void rehash(checker_t *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 1024;
    free(c->slots);
    c->slots = malloc(n * sizeof *c->slots);
    if (!c->slots)
        abort();
    for (size_t i = 0; i < n; i++)
        c->slots[i] = -1;
    c->nslots = n;
    for (size_t t = 0; t < c->ntasks; t++) {
        size_t h = fnv(c->tasks[t].id, IDLEN) & (n - 1);
        while (c->slots[h] >= 0)
            h = (h + 1) & (n - 1);
        c->slots[h] = (int32_t)t;
    }
}

/* The task of a 36-char id, created if new; -1 if id is not one. */
static int32_t task_of(checker_t *c, const char *id)
{
    if (!id || strlen(id) != IDLEN)
        return -1;
    if ((c->ntasks + 1) * 2 > c->nslots)
        rehash(c);
    size_t h = fnv(id, IDLEN) & (c->nslots - 1);
    while (c->slots[h] >= 0) {
        if (memcmp(c->tasks[c->slots[h]].id, id, IDLEN) == 0)
            return c->slots[h];
        h = (h + 1) & (c->nslots - 1);
    }
    c->tasks = grow(c->tasks, &c->tcap, c->ntasks + 1, sizeof *c->tasks);
    task_t *t = &c->tasks[c->ntasks];
    memset(t, 0, sizeof *t);
    memcpy(t->id, id, IDLEN);
    t->db_state = -1;
    c->slots[h] = (int32_t)c->ntasks;
    return (int32_t)c->ntasks++;
}

checker_t *checker_new(void) { return calloc(1, sizeof(checker_t)); }

void checker_destroy(checker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    checker_t *c = *self_p;
    for (size_t i = 0; i < c->ntasks; i++) {
        free(c->tasks[i].name);
        free(c->tasks[i].args);
        free(c->tasks[i].result);
        free(c->tasks[i].evs);
    }
    free(c->tasks);
    free(c->slots);
    for (size_t i = 0; i < c->nstr; i++)
        free(c->str[i]);
    free(c->str);
    free(c->ev);
    free(c->aux);
    for (int k = 0; k < K_COUNT; k++)
        for (int i = 0; i < REPORT_MAX; i++)
            free(c->msgs[k][i]);
    free(c);
    *self_p = NULL;
}

void checker_set_verifier(checker_t *self, checker_verify_fn fn, void *arg)
{
    self->verify = fn;
    self->verify_arg = arg;
}

/* ---- parsing ------------------------------------------------------------ */

static bool parse_u64(const char *s, int base, uint64_t *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, base);
    if (*end || errno || *s == '-')
        return false;
    *v = x;
    return true;
}

static bool parse_i32(const char *s, int32_t *v)
{
    uint64_t x;
    if (!parse_u64(s, 10, &x) || x > INT32_MAX)
        return false;
    *v = (int32_t)x;
    return true;
}

static bool parse_att(const char *s, uint32_t *v)
{
    uint64_t x;
    if (!parse_u64(s, 10, &x) || x > UINT32_MAX)
        return false;
    *v = (uint32_t)x;
    return true;
}

/* Fills e from the fields after "<wall> <role> <pid>"; false = malformed.
 * Unknown events are skipped (true, e->kind = 255). */
static bool parse_event(checker_t *c, char **f, int nf, ev_t *e)
{
    const char *ev = f[0];
    e->task = -1;
    e->kind = 255;
#define NEED(n) do { if (nf < (n)) return false; } while (0)
#define TASK(i) do { if ((e->task = task_of(c, f[i])) < 0) return false; } while (0)
#define ATT(i) do { if (!parse_att(f[i], &e->attempt)) return false; } while (0)
    if (!strcmp(ev, "submit_invoke") || !strcmp(ev, "submit_ack") ||
        !strcmp(ev, "submit_timeout") || !strcmp(ev, "accept") || !strcmp(ev, "busy")) {
        NEED(2);
        TASK(1);
        e->kind = !strcmp(ev, "submit_invoke") ? E_INVOKE
                  : !strcmp(ev, "submit_ack")  ? E_ACK
                  : !strcmp(ev, "accept")      ? E_ACCEPT
                  : !strcmp(ev, "busy")        ? E_BUSY
                                               : E_STIMEOUT;
    } else if (!strcmp(ev, "submit_fail")) {
        NEED(3);
        TASK(1);
        e->kind = E_SFAIL;
        e->s1 = intern(c, f[2]);
    } else if (!strcmp(ev, "start") || !strcmp(ev, "node_dead") || !strcmp(ev, "hello")) {
        NEED(2);
        e->kind = !strcmp(ev, "start") ? E_START : !strcmp(ev, "hello") ? E_HELLO : E_NODE_DEAD;
        e->s1 = intern(c, f[1]);
    } else if (!strcmp(ev, "stop")) {
        e->kind = E_STOP;
    } else if (!strcmp(ev, "dispatch")) {
        NEED(4);
        TASK(1);
        ATT(2);
        e->kind = E_DISPATCH;
        e->s1 = intern(c, f[3]);
    } else if (!strcmp(ev, "requeue")) {
        NEED(4);
        TASK(1);
        ATT(2);
        e->kind = E_REQUEUE;
        e->s1 = intern(c, f[3]);
    } else if (!strcmp(ev, "terminal")) {
        NEED(5);
        TASK(1);
        ATT(2);
        e->tstate = !strcmp(f[3], "succeeded") ? 2
                    : !strcmp(f[3], "failed")  ? 3
                    : !strcmp(f[3], "revoked") ? 6
                    : !strcmp(f[3], "expired") ? 7
                                               : 0;
        if (!e->tstate)
            return false;
        if (!parse_u64(f[4], 16, &e->hash))
            return false;
        e->kind = E_TERMINAL;
        e->ok = e->tstate == 2;
    } else if (!strcmp(ev, "stale") || !strcmp(ev, "done_repeat") ||
               !strcmp(ev, "done_sent") || !strcmp(ev, "exec_start")) {
        NEED(3);
        TASK(1);
        ATT(2);
        e->kind = !strcmp(ev, "stale")         ? E_STALE
                  : !strcmp(ev, "done_repeat") ? E_REPEAT
                  : !strcmp(ev, "done_sent")   ? E_DONE_SENT
                                               : E_EXEC_START;
    } else if (!strcmp(ev, "done_acked")) {
        NEED(4);
        TASK(1);
        ATT(2);
        e->kind = E_DONE_ACKED;
        e->s1 = intern(c, f[3]);
    } else if (!strcmp(ev, "exec_end")) {
        NEED(5);
        TASK(1);
        ATT(2);
        if (strcmp(f[3], "0") && strcmp(f[3], "1"))
            return false;
        if (!parse_u64(f[4], 16, &e->hash))
            return false;
        e->kind = E_EXEC_END;
        e->ok = f[3][0] == '1';
    } else if (!strcmp(ev, "child_died")) {
        NEED(5);
        if (!parse_i32(f[1], &e->cpid))
            return false;
        e->s1 = intern(c, f[2]);
        if (strcmp(f[3], "-") != 0) {
            TASK(3);
            ATT(4);
        }
        e->kind = E_CHILD_DIED;
    } else if (!strcmp(ev, "time_limit")) {
        NEED(4);
        TASK(1);
        ATT(2);
        if (!parse_i32(f[3], &e->cpid))
            return false;
        e->kind = E_TIME_LIMIT;
    } else if (!strcmp(ev, "fault")) {
        NEED(3);
        e->kind = E_FAULT;
        e->s1 = intern(c, f[1]);
        e->s2 = intern(c, f[2]);
    }
#undef NEED
#undef TASK
#undef ATT
    return true;
}

taskq_err_t checker_load_file(checker_t *self, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "checker: %s: %s\n", path, strerror(errno));
        return TASKQ_ESYS;
    }
    uint32_t file = self->nfiles++;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    uint32_t lineno = 0;
    int64_t last_t = INT64_MIN;
    while ((len = getline(&line, &lcap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0)
            continue;
        char *f[16], *save = NULL;
        int nf = 0;
        for (char *tok = strtok_r(line, " ", &save); tok && nf < 16;
             tok = strtok_r(NULL, " ", &save))
            f[nf++] = tok;
        ev_t e;
        memset(&e, 0, sizeof e);
        uint64_t t;
        bool ok = nf >= 4 && parse_u64(f[0], 10, &t) && t <= INT64_MAX &&
                  parse_i32(f[2], &e.pid) && parse_event(self, f + 3, nf - 3, &e);
        if (!ok) {
            if (self->malformed++ < REPORT_MAX)
                fprintf(stderr, "checker: %s:%u: malformed line\n", path, lineno);
            continue;
        }
        if (e.kind == 255)
            continue; /* an event this checker does not know */
        /* inside one file, line order is the truth even if the clock steps back */
        e.t = (int64_t)t < last_t ? last_t : (int64_t)t;
        last_t = e.t;
        e.file = file;
        e.line = lineno;
        self->ev = grow(self->ev, &self->cap, self->nev + 1, sizeof *self->ev);
        self->ev[self->nev++] = e;
    }
    free(line);
    bool err = ferror(fp);
    fclose(fp);
    return err ? TASKQ_ESYS : TASKQ_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

taskq_err_t checker_load_dir(checker_t *self, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "checker: %s: %s\n", dir, strerror(errno));
        return TASKQ_ESYS;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".hist") == 0) {
            names = grow(names, &cap, n + 1, sizeof *names);
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name); /* deterministic file order */
    taskq_err_t rc = TASKQ_OK;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (checker_load_file(self, path) != TASKQ_OK)
            rc = TASKQ_ESYS;
        free(names[i]);
    }
    free(names);
    return rc;
}

static void *dup_blob(const void *p, size_t n)
{
    if (!p || n == 0)
        return NULL;
    void *q = malloc(n);
    if (!q)
        abort();
    memcpy(q, p, n);
    return q;
}

taskq_err_t checker_load_db(checker_t *self, const char *dbpath)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "checker: %s: %s\n", dbpath, db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return TASKQ_ESTORE;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, name, args, state, attempts, result FROM tasks", -1,
                           &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "checker: %s: %s\n", dbpath, sqlite3_errmsg(db));
        sqlite3_close(db);
        return TASKQ_ESTORE;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 0);
        if (sqlite3_column_bytes(st, 0) != 16 || !b) {
            fprintf(stderr, "checker: a row with an id that is not 16 bytes\n");
            continue;
        }
        char id[IDLEN + 1];
        snprintf(id, sizeof id,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        task_t *t = &self->tasks[task_of(self, id)];
        t->in_db = true;
        t->db_state = sqlite3_column_int(st, 3);
        t->db_attempts = (uint32_t)sqlite3_column_int64(st, 4);
        const char *name = (const char *)sqlite3_column_text(st, 1);
        free(t->name);
        t->name = strdup(name ? name : "");
        free(t->args);
        t->args_len = (size_t)sqlite3_column_bytes(st, 2);
        t->args = dup_blob(sqlite3_column_blob(st, 2), t->args_len);
        free(t->result);
        t->result_len = (size_t)sqlite3_column_bytes(st, 5);
        t->result = dup_blob(sqlite3_column_blob(st, 5), t->result_len);
        /* the broker stores nil (0xc0) for an empty result */
        t->db_hash = t->result_len ? fnv(t->result, t->result_len) : fnv("\xc0", 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "checker: %s: reading tasks failed (%d)\n", dbpath, rc);
        return TASKQ_ESTORE;
    }
    return TASKQ_OK;
}

/* ---- rules -------------------------------------------------------------- */

static void violation(checker_t *c, int kind, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void violation(checker_t *c, int kind, const char *id, const char *fmt, ...)
{
    size_t i = c->count[kind]++;
    if (i >= REPORT_MAX)
        return;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (asprintf(&c->msgs[kind][i], "VIOLATION %s %s: %s", KIND_NAME[kind], id, why) < 0)
        c->msgs[kind][i] = NULL;
}

static int cmp_ev(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct {
    uint32_t *a;
    size_t n, cap;
} aset_t;

static bool aset_has(const aset_t *s, uint32_t v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->a[i] == v)
            return true;
    return false;
}

static void aset_add(aset_t *s, uint32_t v)
{
    if (aset_has(s, v))
        return;
    s->a = grow(s->a, &s->cap, s->n + 1, sizeof *s->a);
    s->a[s->n++] = v;
}

/* Did a worker that said `hello node` have pid `target`? */
static bool node_has_pid(const checker_t *c, uint32_t node, const char *target)
{
    for (size_t i = 0; i < c->naux; i++) {
        const ev_t *e = &c->ev[c->aux[i]];
        if (e->kind == E_HELLO && e->s1 == node) {
            char p[16];
            snprintf(p, sizeof p, "%d", (int)e->pid);
            if (!strcmp(p, target))
                return true;
        }
    }
    return false;
}

#define FAULT_SLACK_US 100000 /* 100 ms: fault line written -> signal delivered */

/* Is the re-execution after exec `x` (attempt A, child pid, node) explained
 * by a fault? Window: from its exec_start to the requeue of A (or, with no
 * requeue, the next exec_start). */
static bool dup_explained(const checker_t *c, const task_t *t, const ev_t *x, int64_t next_t,
                          uint32_t node, bool have_node, const char **why)
{
    int64_t from = x->t, to = next_t;
    const char *reason = "";
    for (size_t k = 0; k < t->nev; k++) {
        const ev_t *e = &c->ev[t->evs[k]];
        if (e->kind == E_REQUEUE && e->attempt == x->attempt && e->t >= from) {
            to = e->t;
            reason = S(c, e->s1);
            break;
        }
    }
    bool broker_side = !strcmp(reason, "lease_expired") || !strcmp(reason, "hello_reconcile");
    /* A retry by the task's policy: the attempt reported a failure (or hit
     * its time limit) and the broker requeued it. Not a duplicate. */
    if (!strcmp(reason, "retrying") || !strcmp(reason, "requeued") ||
        !strcmp(reason, "rate_limited")) {
        for (size_t k = 0; k < t->nev; k++) {
            const ev_t *e = &c->ev[t->evs[k]];
            if (e->attempt == x->attempt &&
                ((e->kind == E_EXEC_END && !e->ok) || e->kind == E_TIME_LIMIT)) {
                *why = "retry";
                return true;
            }
        }
    }
    char cpid[16];
    snprintf(cpid, sizeof cpid, "%d", (int)x->pid);
    for (size_t i = 0; i < c->naux; i++) {
        const ev_t *e = &c->ev[c->aux[i]];
        if (e->kind == E_CHILD_DIED && e->cpid == x->pid && e->t >= from) {
            *why = "child_died";
            return true;
        }
        if (e->kind != E_FAULT || e->t > to)
            continue;
        const char *kind = S(c, e->s1), *target = S(c, e->s2);
        /* A fault is logged just before it is injected (the spec's rule). A
         * node's children die after its supervisor (PDEATHSIG) and may start
         * a task already in their channel in between, so a fault aimed at a
         * child or a node also hits executions that began up to
         * FAULT_SLACK_US after its line. Broker-side faults get no slack. */
        bool aimed = !strcmp(kind, "kill_child") || !strcmp(kind, "kill_node") ||
                     !strcmp(kind, "stop_node") || !strcmp(kind, "partition_node");
        if (e->t < from - (aimed ? FAULT_SLACK_US : 0))
            continue;
        if (!strcmp(kind, "kill_child") && !strcmp(target, cpid)) {
            *why = "kill_child";
            return true;
        }
        if ((!strcmp(kind, "kill_node") || !strcmp(kind, "stop_node") ||
             !strcmp(kind, "partition_node")) &&
            have_node && (!strcmp(target, S(c, node)) || node_has_pid(c, node, target))) {
            *why = kind;
            return true;
        }
        if ((!strcmp(kind, "crash_vfs") || !strcmp(kind, "kill_broker")) && broker_side) {
            *why = kind;
            return true;
        }
    }
    return false;
}

static void check_task(checker_t *c, task_t *t, size_t *dup_ok)
{
    aset_t dispatched = {0}, requeued = {0}, executed = {0};
    bool have_last = false;
    uint32_t last = 0; /* attempt of the latest dispatch */
    size_t nterm = 0;
    const ev_t *term = NULL;
    for (size_t k = 0; k < t->nev; k++) {
        const ev_t *e = &c->ev[t->evs[k]];
        switch (e->kind) {
        case E_DISPATCH:
            if (aset_has(&dispatched, e->attempt))
                violation(c, K_OVERLAP, t->id, "attempt %u dispatched twice", e->attempt);
            else if (have_last && !aset_has(&requeued, last))
                violation(c, K_OVERLAP, t->id,
                          "attempt %u dispatched while attempt %u's lease was current "
                          "(no requeue of %u)",
                          e->attempt, last, last);
            aset_add(&dispatched, e->attempt);
            last = e->attempt;
            have_last = true;
            break;
        case E_REQUEUE:
            aset_add(&requeued, e->attempt);
            break;
        case E_EXEC_START:
            if (aset_has(&executed, e->attempt))
                violation(c, K_OVERLAP, t->id, "attempt %u executed twice", e->attempt);
            aset_add(&executed, e->attempt);
            /* an execution proves its dispatch committed, even if the broker
             * died before writing the dispatch line */
            if (!aset_has(&dispatched, e->attempt)) {
                aset_add(&dispatched, e->attempt);
                last = e->attempt;
                have_last = true;
            }
            break;
        case E_TERMINAL:
            nterm++;
            if (!term)
                term = e;
            if (e->tstate == 6 || e->tstate == 7)
                break; /* revoked / expired: may end a task never (or not now) running */
            if (!aset_has(&dispatched, e->attempt))
                violation(c, K_STALE_ACCEPTED, t->id, "terminal for attempt %u, never dispatched",
                          e->attempt);
            else if (e->attempt != last)
                violation(c, K_STALE_ACCEPTED, t->id,
                          "terminal for attempt %u, but the latest dispatch is attempt %u",
                          e->attempt, last);
            break;
        default:
            break;
        }
    }
    /* 1 lost, 2 unexpected */
    bool db_terminal = t->db_state == 2 || t->db_state == 3 || t->db_state == 6 ||
                       t->db_state == 7;
    if (t->acked && !t->in_db)
        violation(c, K_LOST, t->id, "acknowledged, absent from the database");
    else if (t->acked && !db_terminal)
        violation(c, K_LOST, t->id, "acknowledged, state %d (not terminal) after the drain",
                  t->db_state);
    if (t->in_db && !t->invoked)
        violation(c, K_UNEXPECTED, t->id, "in the database, never submitted");
    /* 3 multi_terminal */
    if (nterm > 1)
        violation(c, K_MULTI_TERMINAL, t->id, "%zu terminal events", nterm);
    else if (term && t->in_db &&
             ((term->tstate <= 3 && t->db_attempts != term->attempt) ||
              t->db_state != term->tstate))
        violation(c, K_MULTI_TERMINAL, t->id,
                  "database says state %d attempts %u, history says %s at attempt %u",
                  t->db_state, t->db_attempts,
                  term->tstate == 2   ? "succeeded"
                  : term->tstate == 3 ? "failed"
                  : term->tstate == 6 ? "revoked"
                                      : "expired",
                  term->attempt);
    /* 6 duplicates: every execution followed by another one */
    const ev_t *prev = NULL;
    for (size_t k = 0; k < t->nev; k++) {
        const ev_t *e = &c->ev[t->evs[k]];
        if (e->kind != E_EXEC_START)
            continue;
        if (prev) {
            uint32_t node = 0;
            bool have_node = false;
            for (size_t j = 0; j < t->nev; j++) {
                const ev_t *d = &c->ev[t->evs[j]];
                if (d->kind == E_DISPATCH && d->attempt == prev->attempt) {
                    node = d->s1;
                    have_node = true;
                }
            }
            const char *why = NULL;
            if (dup_explained(c, t, prev, e->t, node, have_node, &why))
                (*dup_ok)++;
            else
                violation(c, K_DUP_UNEXPLAINED, t->id,
                          "attempt %u (child %d) ran again as attempt %u with no fault to "
                          "explain it",
                          prev->attempt, (int)prev->pid, e->attempt);
        }
        prev = e;
    }
    /* 7 mismatch */
    if (t->in_db && t->db_state == 2) {
        const ev_t *end = NULL;
        for (size_t k = 0; k < t->nev; k++) {
            const ev_t *e = &c->ev[t->evs[k]];
            if (e->kind == E_EXEC_END && e->attempt == t->db_attempts)
                end = e;
        }
        if (end && !end->ok)
            violation(c, K_MISMATCH, t->id, "succeeded in the database, attempt %u failed",
                      t->db_attempts);
        else if (end && end->hash != t->db_hash)
            violation(c, K_MISMATCH, t->id,
                      "stored result hash %016" PRIx64 " != exec_end hash %016" PRIx64
                      " (attempt %u)",
                      t->db_hash, end->hash, t->db_attempts);
        else if (c->verify && !c->verify(t->name, t->args, t->args_len, t->result,
                                         t->result_len, c->verify_arg))
            violation(c, K_MISMATCH, t->id, "result is wrong for %s(args)", t->name);
    }
    free(dispatched.a);
    free(requeued.a);
    free(executed.a);
}

int checker_run(checker_t *c, FILE *out, checker_summary_t *sum)
{
    qsort(c->ev, c->nev, sizeof *c->ev, cmp_ev);
    checker_summary_t s;
    memset(&s, 0, sizeof s);
    s.events = c->nev;
    s.malformed = c->malformed;
    s.files = c->nfiles;
    for (size_t i = 0; i < c->nev; i++) {
        const ev_t *e = &c->ev[i];
        if (e->kind == E_STALE)
            s.stale_rejected++;
        if (e->kind == E_HELLO || e->kind == E_CHILD_DIED || e->kind == E_FAULT) {
            c->aux = grow(c->aux, &c->auxcap, c->naux + 1, sizeof *c->aux);
            c->aux[c->naux++] = (uint32_t)i;
        }
        if (e->task < 0)
            continue;
        task_t *t = &c->tasks[e->task];
        if (e->kind == E_INVOKE)
            t->invoked = true;
        if (e->kind == E_ACK)
            t->acked = true;
        t->evs = grow(t->evs, &t->cap, t->nev + 1, sizeof *t->evs);
        t->evs[t->nev++] = (uint32_t)i;
    }
    for (size_t i = 0; i < c->ntasks; i++) {
        task_t *t = &c->tasks[i];
        s.submitted += t->invoked;
        s.acked += t->acked;
        s.terminal += t->db_state == 2 || t->db_state == 3 || t->db_state == 6 ||
                      t->db_state == 7;
        check_task(c, t, &s.dup_explained);
    }
    s.lost = c->count[K_LOST];
    s.unexpected = c->count[K_UNEXPECTED];
    s.multi_terminal = c->count[K_MULTI_TERMINAL];
    s.stale_accepted = c->count[K_STALE_ACCEPTED];
    s.overlap = c->count[K_OVERLAP];
    s.dup_unexplained = c->count[K_DUP_UNEXPLAINED];
    s.mismatch = c->count[K_MISMATCH];
    int total = 0;
    for (int k = 0; k < K_COUNT; k++)
        total += (int)c->count[k];
    if (out) {
        fprintf(out,
                "checker: submitted=%zu acked=%zu terminal=%zu lost=%zu unexpected=%zu "
                "multi_terminal=%zu stale_accepted=%zu overlap=%zu dup_unexplained=%zu "
                "dup_explained=%zu mismatch=%zu stale_rejected=%zu\n",
                s.submitted, s.acked, s.terminal, s.lost, s.unexpected, s.multi_terminal,
                s.stale_accepted, s.overlap, s.dup_unexplained, s.dup_explained, s.mismatch,
                s.stale_rejected);
        fprintf(out, "checker: %zu events from %zu files, %zu malformed lines\n", s.events,
                s.files, s.malformed);
        for (int k = 0; k < K_COUNT; k++) {
            for (size_t i = 0; i < c->count[k] && i < REPORT_MAX; i++)
                if (c->msgs[k][i])
                    fprintf(out, "%s\n", c->msgs[k][i]);
            if (c->count[k] > REPORT_MAX)
                fprintf(out, "... and %zu more %s\n", c->count[k] - REPORT_MAX, KIND_NAME[k]);
        }
    }
    if (sum)
        *sum = s;
    return total;
}
