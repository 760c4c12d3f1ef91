/* thist.c - the history recorder; see thist.h. */
#include "thist.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tclock.h"

#define LINE_MAX_BYTES 1024
#define FLUSH_CHUNK (64 * 1024)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *open_role;
static int fd = -1;
static int pid;
/* deferred mode: one growing buffer, reused turn after turn */
static bool deferred;
static char *held;
static size_t held_len, held_cap;

static void do_open(void)
{
    const char *dir = getenv("TASKQ_HISTORY");
    if (!dir || !*dir || !open_role)
        return;
    pid = (int)getpid();
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s.%d.hist", dir, open_role, pid);
    if (n < 0 || (size_t)n >= sizeof path)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "taskq: TASKQ_HISTORY: cannot open %s: %s (history disabled)\n", path,
                strerror(errno));
}

void thist_open(const char *role)
{
    /* the first caller's role wins; pthread_once makes the lazy open of
     * libtaskq safe when two client threads submit at once */
    if (!open_role)
        open_role = role;
    pthread_once(&once, do_open);
}

bool thist_is_enabled(void) { return fd >= 0; }

/* Writes all of buf; a short write continues where it stopped (one writer
 * per file, so the line stays contiguous). Errors are dropped: history is
 * a test aid and must never stop the product. */
static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

void thist_event(const char *fmt, ...)
{
    if (fd < 0)
        return;
    char line[LINE_MAX_BYTES];
    int n = snprintf(line, sizeof line, "%lld %s %d ", (long long)tclock_wall_us(), open_role,
                     pid);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - 1 - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still one whole line */
    line[len++] = '\n';
    if (!deferred) {
        write_all(line, len);
        return;
    }
    if (held_len + len > held_cap) {
        size_t cap = held_cap ? held_cap * 2 : FLUSH_CHUNK;
        while (cap < held_len + len)
            cap *= 2;
        char *p = realloc(held, cap);
        if (!p) {
            /* say so: a missing event makes the checker report violations */
            fprintf(stderr, "taskq: history: out of memory, event lost\n");
            return;
        }
        held = p;
        held_cap = cap;
    }
    memcpy(held + held_len, line, len);
    held_len += len;
}

void thist_defer(bool on)
{
    if (!on)
        thist_flush();
    deferred = on;
}

void thist_flush(void)
{
    if (fd < 0 || held_len == 0)
        return;
    /* whole lines per write(2): cut each chunk after its last newline */
    size_t off = 0;
    while (off < held_len) {
        size_t len = held_len - off;
        if (len > FLUSH_CHUNK) {
            len = FLUSH_CHUNK;
            while (len > 0 && held[off + len - 1] != '\n')
                len--;
            if (len == 0)
                len = FLUSH_CHUNK;
        }
        write_all(held + off, len);
        off += len;
    }
    held_len = 0;
}

void thist_discard(void) { held_len = 0; }

void thist_close(void)
{
    thist_flush();
    deferred = false;
    free(held);
    held = NULL;
    held_len = held_cap = 0;
    if (fd >= 0)
        close(fd);
    fd = -1;
}

uint64_t thist_fnv64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t thist_result_hash(const void *data, size_t len)
{
    if (!data || len == 0)
        return thist_fnv64("\xc0", 1);
    return thist_fnv64(data, len);
}
