/*
 * tlog.h - logging with file:line:func, to stderr, one line per event:
 *   2026-11-25T12:00:00.123Z broker[1234] WARN handlers.c:88 on_submit: ...
 * The level is set once at start-up (TASKQ_LOG=debug|info|warn|error or
 * tlog_set_level). Safe to call from a forked child (no locks, one write()).
 */
#ifndef TASKQ_TLOG_H
#define TASKQ_TLOG_H

enum { TLOG_DEBUG = 0, TLOG_INFO = 1, TLOG_WARN = 2, TLOG_ERROR = 3 };

/* Sets the process tag shown in every line ("broker", "worker", ...) and
 * reads TASKQ_LOG. `tag` must outlive the process (a literal). */
void tlog_init(const char *tag);
void tlog_set_level(int level);
int tlog_level(void);
void tlog_write(int level, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define tlog_debug(...) tlog_write(TLOG_DEBUG, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define tlog_info(...) tlog_write(TLOG_INFO, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define tlog_warn(...) tlog_write(TLOG_WARN, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define tlog_error(...) tlog_write(TLOG_ERROR, __FILE__, __LINE__, __func__, __VA_ARGS__)

#endif
