#include "tlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *g_tag = "taskq";
static int g_level = TLOG_INFO;

void tlog_init(const char *tag)
{
    const char *lv = getenv("TASKQ_LOG");
    if (tag)
        g_tag = tag;
    if (lv) {
        if (!strcasecmp(lv, "debug"))
            g_level = TLOG_DEBUG;
        else if (!strcasecmp(lv, "info"))
            g_level = TLOG_INFO;
        else if (!strcasecmp(lv, "warn"))
            g_level = TLOG_WARN;
        else if (!strcasecmp(lv, "error"))
            g_level = TLOG_ERROR;
    }
}

void tlog_set_level(int level) { g_level = level; }
int tlog_level(void) { return g_level; }

void tlog_write(int level, const char *file, int line, const char *func, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < g_level)
        return;
    char buf[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s %s:%d %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, g_tag, (int)getpid(),
                     names[level < 0 || level > 3 ? 3 : level], base, line, func);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += m;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w;
}
