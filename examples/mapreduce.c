/*
 * mapreduce.c - a map-reduce with a chord: count the words of a text on the
 * workers. The lines are the items of taskq_map(): one "wc.count" task per
 * chunk of lines (the map step), and a chord callback "wc.sum" that gets
 * every chunk's count, in order, once all of them succeeded (the reduce
 * step). The whole workflow is one atomic submit.
 *
 *   mapreduce [BROKER] [--file PATH] [--chunk N] [--timeout S]
 *
 * The tasks come from the example module examples/modules/wctasks.c, built
 * with the project as build/lib/libwctasks.so:
 *   taskq-broker &
 *   taskq-worker --module build/lib/libwctasks.so &
 *   build/bin/mapreduce --file README.md --chunk 20
 * BROKER defaults to $TASKQ_BROKER, then tcp://127.0.0.1:5555; without
 * --file it counts a built-in text; --chunk (lines per task) defaults to 4,
 * --timeout to 60 s. Uses only include/taskq.h: the items are encoded by
 * hand as msgpack. Exit 0 iff the workers' total equals the local count.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskq.h"

static const char *const BUILTIN[] = {
    "The seed's process pools give their callers map, as_completed,",
    "and wait for all; results carry the task's exception.",
    "Celery users expect the same across machines:",
    "revoke, canvas (group, chain, chord), unique tasks,",
    "results that expire, and a place to see and re-run what failed.",
    "",
    "taskq does each one as committed state in its single broker,",
    "in the same transaction as the transition that triggers it.",
    "A chord is never stuck: when its last member ends, the callback is",
    "queued in that commit, with the members' results in order.",
};

/* ---- a tiny msgpack writer: arrays of strings -------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static int put(buf_t *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096) + n;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

/* A msgpack header: fixed form below 16 / 32, else type byte + 2 or 4 bytes. */
static int header(buf_t *b, uint8_t fix, uint32_t fixmax, uint8_t t16, uint8_t t32, uint32_t n)
{
    uint8_t h[5];
    if (n < fixmax) {
        h[0] = (uint8_t)(fix | n);
        return put(b, h, 1);
    }
    if (n <= 0xffff) {
        h[0] = t16;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
        return put(b, h, 3);
    }
    h[0] = t32;
    for (int i = 0; i < 4; i++)
        h[1 + i] = (uint8_t)(n >> (24 - 8 * i));
    return put(b, h, 5);
}

static int put_str(buf_t *b, const char *s, size_t n)
{
    /* str8 (0xd9) would do for 32..255 bytes; str16 is valid for them too */
    return header(b, 0xa0, 32, 0xda, 0xdb, (uint32_t)n) || put(b, s, n);
}

/* A non-negative msgpack integer result; -1 if it is something else. */
static long long read_uint(const uint8_t *p, size_t n)
{
    if (n == 1 && p[0] < 0x80)
        return p[0];
    if (n < 2 || p[0] < 0xcc || p[0] > 0xcf || n != 1 + (1u << (p[0] - 0xcc)))
        return -1;
    unsigned long long v = 0;
    for (size_t i = 1; i < n; i++)
        v = v << 8 | p[i];
    return v > (unsigned long long)INT64_MAX ? -1 : (long long)v;
}

/* The same rule as wc.count: runs of non-blank bytes. */
static long long count_words(const char *p, size_t n)
{
    long long w = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        int blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' ||
                    p[i] == '\f' || p[i] == '\v';
        if (blank)
            in = 0;
        else if (!in) {
            in = 1;
            w++;
        }
    }
    return w;
}

/* ---- the input: lines of a file, or the built-in text ------------------ */

typedef struct {
    char *text;        /* the file, owned; NULL for the built-in text */
    const char **line;
    size_t *len;
    size_t n;
} lines_t;

static int read_lines(const char *path, lines_t *l)
{
    memset(l, 0, sizeof *l);
    if (!path) {
        l->n = sizeof BUILTIN / sizeof BUILTIN[0];
        l->line = malloc(l->n * sizeof *l->line);
        l->len = malloc(l->n * sizeof *l->len);
        if (!l->line || !l->len)
            return -1;
        for (size_t i = 0; i < l->n; i++) {
            l->line[i] = BUILTIN[i];
            l->len[i] = strlen(BUILTIN[i]);
        }
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    buf_t b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (put(&b, chunk, got) != 0)
            break;
    fclose(f);
    if (put(&b, "", 1) != 0) /* a final NUL; not part of any line */
        return -1;
    l->text = (char *)b.p;
    size_t size = b.len - 1, cap = 1;
    for (size_t i = 0; i < size; i++)
        cap += l->text[i] == '\n';
    l->line = malloc(cap * sizeof *l->line);
    l->len = malloc(cap * sizeof *l->len);
    if (!l->line || !l->len)
        return -1;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || l->text[i] == '\n') {
            if (i > start || i < size) {
                l->line[l->n] = l->text + start;
                l->len[l->n++] = i - start;
            }
            start = i + 1;
        }
    }
    return 0;
}

static void free_lines(lines_t *l)
{
    free(l->text);
    free(l->line);
    free(l->len);
}

/* ---- waiting: chunks as they complete ---------------------------------- */

typedef struct {
    const taskq_id_t *ids;
    size_t n, done;
    int failed;
} progress_t;

static int on_chunk(const taskq_task_t *t, void *arg)
{
    progress_t *p = arg;
    size_t k = 0;
    while (k < p->n && memcmp(p->ids[k].b, t->id.b, 16) != 0)
        k++;
    p->done++;
    if (t->state == TASKQ_STATE_SUCCEEDED) {
        printf("  chunk %3zu: %6lld words   (%zu/%zu done)\n", k,
               read_uint(t->result, t->result_len), p->done, p->n);
    } else {
        printf("  chunk %3zu: %s: %s\n", k, taskq_state_name(t->state), t->error);
        p->failed = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *broker = NULL, *path = NULL;
    long chunk = 4, timeout_s = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--file") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_s = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !broker)
            broker = argv[i];
        else {
            fprintf(stderr, "usage: mapreduce [BROKER] [--file PATH] [--chunk N] [--timeout S]\n");
            return 2;
        }
    }
    if (chunk < 1 || timeout_s < 1) {
        fprintf(stderr, "mapreduce: --chunk and --timeout must be >= 1\n");
        return 2;
    }
    lines_t l;
    if (read_lines(path, &l) != 0)
        return 1;
    /* items: ["line", ...]; the local count to check against */
    buf_t items = {0};
    long long expect = 0;
    int bad = header(&items, 0x90, 16, 0xdc, 0xdd, (uint32_t)l.n);
    for (size_t i = 0; i < l.n && !bad; i++) {
        bad = put_str(&items, l.line[i], l.len[i]);
        expect += count_words(l.line[i], l.len[i]);
    }
    if (bad) {
        fprintf(stderr, "mapreduce: out of memory\n");
        return 1;
    }

    taskq_err_t err;
    taskq_client_t *c = taskq_client_new(broker, &err);
    if (!c) {
        fprintf(stderr, "taskq_client_new: %s\n", taskq_strerror(err));
        return 1;
    }
    int rc = 1;
    taskq_task_t *total = NULL;
    taskq_id_t gid, *ids = NULL;
    size_t nids = 0;
    /* the reduce step: args [] + [[count0, count1, ...]] */
    taskq_task_spec_t reduce = {.name = "wc.sum"};
    err = taskq_map(c, "wc.count", items.p, items.len, (size_t)chunk, &reduce, &gid, &ids, &nids);
    if (err != TASKQ_OK) {
        fprintf(stderr, "taskq_map: %s %s\n", taskq_strerror(err), taskq_client_last_error(c));
        goto out;
    }
    char gs[TASKQ_ID_STRLEN + 1], cs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&gid, gs);
    taskq_id_format(&reduce.id, cs);
    printf("map: %zu lines in %zu chunks of %ld (group %s)\nreduce: wc.sum (task %s)\n", l.n,
           nids, chunk, gs, cs);

    /* the map step as it completes (the broker pushes each end) */
    progress_t p = {.ids = ids, .n = nids};
    err = taskq_wait_all(c, ids, nids, timeout_s * 1000, on_chunk, &p);
    if (err != TASKQ_OK) {
        fprintf(stderr, "waiting for the chunks: %s\n", taskq_strerror(err));
        goto out;
    }
    /* the reduce step: queued by the broker in the commit of the last chunk */
    err = taskq_wait(c, &reduce.id, timeout_s * 1000, &total);
    if (err != TASKQ_OK) {
        fprintf(stderr, "waiting for wc.sum: %s\n", taskq_strerror(err));
        goto out;
    }
    taskq_group_info_t g;
    if (taskq_group_status(c, &gid, &g) == TASKQ_OK)
        printf("group: %llu/%llu succeeded, %llu failed\n", (unsigned long long)g.succeeded,
               (unsigned long long)g.total, (unsigned long long)g.failed);
    if (total->state != TASKQ_STATE_SUCCEEDED) {
        fprintf(stderr, "wc.sum ended %s: %s\n", taskq_state_name(total->state), total->error);
        goto out;
    }
    long long words = read_uint(total->result, total->result_len);
    printf("words: %lld (counted here: %lld)\n", words, expect);
    rc = words == expect && !p.failed ? 0 : 1;
out:
    taskq_task_destroy(&total);
    free(ids);
    free(items.p);
    free_lines(&l);
    taskq_client_destroy(&c);
    return rc;
}
