#define _GNU_SOURCE
/*
 * harness.c - see harness.h. The failure path (h_die_common) uses only
 * async-signal-safe calls (open/read/write/kill/waitpid) so that it can run
 * from the SIGALRM/SIGTERM handler while the main thread is blocked.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tclock.h"

#define H_DIR_MAX 256   /* temp dir path */
#define H_PATH_MAX 512  /* any file inside it, or a binary path */
#define H_MAX_PROCS 2048 /* restarts count: a power-loss test restarts the broker often */
#define H_MAX_LOGS 128
#define H_TAIL_LINES 40
#define H_TAIL_BYTES 8192
#define TQ_SLOTS_MAX_H 256 /* children looked up per node */

typedef struct {
    pid_t pid;
    bool reaped;
    int status;
} h_proc_t;

struct h_broker {
    pid_t pid;
    bool expect_alive; /* false once the test kills it on purpose */
    int out_fd;
    int index;
    int port;
    char endpoint[512];
    char db[H_PATH_MAX];
    char log[H_PATH_MAX];
    int nextra;
    char *extra[32];
    char bind_host[128]; /* "tcp://HOST", the restart binds HOST:port */
    int64_t ready_at;
};

struct h_worker {
    pid_t pid;
    bool expect_alive;
    int index;
    char node_id[64];
    char log[H_PATH_MAX];
    int argc;
    char *argv[56]; /* owned copies, for restarts with the same arguments */
};

#define H_MAX_NETNS 4

typedef struct {
    char name[32];
    char veth[16];
} h_ns_rec_t;

static char g_tmpdir[H_DIR_MAX];
static char g_name[64] = "it";
static bool g_inited;
static volatile sig_atomic_t g_failed;
static volatile sig_atomic_t g_dying;
static pid_t g_self;
static int64_t g_start_ms;
static h_proc_t g_procs[H_MAX_PROCS];
static volatile sig_atomic_t g_nprocs;
static char g_logs[H_MAX_LOGS][H_PATH_MAX];
static volatile sig_atomic_t g_nlogs;
static int g_nbrokers, g_nworkers, g_ncli, g_nbroker_runs;
static h_broker_t *g_brokers[16];
static h_worker_t *g_workers[32];
static char g_hist[H_PATH_MAX];   /* TMP/hist when history is enabled */
static int g_fault_fd = -1;
/* h_broker_restart_fault: the kind to record for each launch, and the line
 * prefix ("<wall_us> fault <pid> fault KIND ") the new process completes
 * with its own pid and writes before exec */
static char g_launch_kind[32];
static char g_launch_fault[256];
static size_t g_launch_fault_len;
static h_ns_rec_t g_netns[H_MAX_NETNS];
static volatile sig_atomic_t g_nnetns;
static char g_ip_path[64];

static void graceful_stop(void);
static void fault_fd_open(void);

/* ---- async-signal-safe output ---------------------------------------------- */

static void s_write(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void s_puts(const char *s)
{
    s_write(2, s, strlen(s));
}

/* Prints the last H_TAIL_LINES lines of one file. */
static void s_tail(const char *path)
{
    static char buf[H_TAIL_BYTES + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    s_puts("----- tail of ");
    s_puts(path);
    s_puts(" -----\n");
    if (fd < 0) {
        s_puts("(cannot open)\n");
        return;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > H_TAIL_BYTES ? end - H_TAIL_BYTES : 0;
    lseek(fd, from, SEEK_SET);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, H_TAIL_BYTES - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == H_TAIL_BYTES)
            break;
    }
    close(fd);
    size_t start = 0;
    int lines = 0;
    for (size_t i = len; i > 0; i--) {
        if (buf[i - 1] == '\n' && i != len && ++lines >= H_TAIL_LINES) {
            start = i;
            break;
        }
    }
    s_write(2, buf + start, len - start);
    if (len > 0 && buf[len - 1] != '\n')
        s_puts("\n");
}

static void s_tail_all(void)
{
    for (int i = 0; i < g_nlogs; i++)
        s_tail(g_logs[i]);
}

/* SIGKILLs every started process and reaps it (bounded: SIGKILL cannot be
 * caught, so waitpid returns promptly). */
static void s_kill_all(void)
{
    for (int i = 0; i < g_nprocs; i++) {
        if (g_procs[i].reaped || g_procs[i].pid <= 0)
            continue;
        kill(g_procs[i].pid, SIGKILL);
    }
    for (int i = 0; i < g_nprocs; i++) {
        if (g_procs[i].reaped || g_procs[i].pid <= 0)
            continue;
        int st;
        if (waitpid(g_procs[i].pid, &st, 0) == g_procs[i].pid || errno == ECHILD) {
            g_procs[i].reaped = true;
            g_procs[i].status = st;
        }
    }
}

/* Runs `ip ARGS...` and waits; async-signal-safe (fork/execv/waitpid). */
static int s_run_ip(char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Deletes every namespace and veth the test made (deleting the namespace
 * also deletes its end of the pair; the root end is deleted in case the
 * namespace was already gone). */
static void s_netns_cleanup(void)
{
    for (int i = g_nnetns - 1; i >= 0; i--) {
        char *del_ns[] = {g_ip_path, "netns", "del", g_netns[i].name, NULL};
        char *del_link[] = {g_ip_path, "link", "del", g_netns[i].veth, NULL};
        s_run_ip(del_ns);
        s_run_ip(del_link);
    }
    g_nnetns = 0;
}

static void s_on_signal(int sig)
{
    if (g_dying)
        _exit(1);
    g_dying = 1;
    g_failed = 1;
    s_puts(sig == SIGALRM ? "\nFAIL: test deadline (alarm) passed\n"
                          : "\nFAIL: test interrupted by a signal\n");
    s_tail_all();
    s_kill_all();
    s_netns_cleanup();
    s_puts("kept temp dir: ");
    s_puts(g_tmpdir);
    s_puts("\n");
    _exit(1);
}

/* ---- process bookkeeping ----------------------------------------------------- */

static void track(pid_t pid)
{
    if (g_nprocs >= H_MAX_PROCS)
        H_FAIL("too many processes started");
    g_procs[g_nprocs].pid = pid;
    g_procs[g_nprocs].reaped = false;
    g_nprocs = g_nprocs + 1;
}

static h_proc_t *find_proc(pid_t pid)
{
    for (int i = 0; i < g_nprocs; i++)
        if (g_procs[i].pid == pid)
            return &g_procs[i];
    return NULL;
}

static void add_log(const char *path)
{
    if (g_nlogs >= H_MAX_LOGS)
        return;
    snprintf(g_logs[g_nlogs], H_PATH_MAX, "%s", path);
    g_nlogs = g_nlogs + 1;
}

/* Reaps pid if it has exited; true if it is (now or before) reaped. */
static bool reap(pid_t pid, int *status)
{
    h_proc_t *p = find_proc(pid);
    if (p && p->reaped) {
        if (status)
            *status = p->status;
        return true;
    }
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        if (p) {
            p->reaped = true;
            p->status = st;
        }
        if (status)
            *status = st;
        return true;
    }
    return false;
}

/* /proc/PID/stat: "pid (comm) S ppid pgrp ..."; comm may hold spaces. */
static bool proc_stat(pid_t pid, char *state, pid_t *pgrp)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    int ppid, pg;
    if (!rp || sscanf(rp + 1, " %c %d %d", state, &ppid, &pg) != 3)
        return false;
    *pgrp = pg;
    return true;
}

bool h_pid_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    if (reap(pid, NULL))
        return false;
    if (kill(pid, 0) != 0)
        return false;
    char st;
    pid_t pg;
    if (proc_stat(pid, &st, &pg) && (st == 'Z' || st == 'X'))
        return false;
    return true;
}

long h_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Live (non-zombie) processes in our process group other than us. */
static int group_survivors(pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *endp;
        long v = strtol(e->d_name, &endp, 10);
        if (*endp != '\0' || v <= 0 || (pid_t)v == g_self)
            continue;
        char st;
        pid_t pg;
        if (!proc_stat((pid_t)v, &st, &pg) || pg != g_self || st == 'Z' || st == 'X')
            continue;
        if (n < max)
            out[n] = (pid_t)v;
        n++;
    }
    closedir(d);
    return n < max ? n : max;
}

static void rm_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[H_PATH_MAX + 300];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void rm_tmpdir(void)
{
    if (g_hist[0])
        rm_dir_files(g_hist);
    DIR *d = opendir(g_tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char path[H_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", g_tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(g_tmpdir);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void at_exit(void)
{
    if (getpid() != g_self || g_dying)
        return;
    g_dying = 1;
    alarm(0);
    if (!g_failed)
        graceful_stop();
    s_kill_all();
    s_netns_cleanup();
    /* Grandchildren (worker children) die through PDEATHSIG when their
     * supervisor dies; give them a bounded moment, then report and kill. */
    pid_t left[64];
    int n = 0;
    int64_t until = tclock_mono_ms() + 3000;
    while ((n = group_survivors(left, 64)) > 0 && tclock_mono_ms() < until)
        sleep_ms(20);
    if (n > 0) {
        for (int i = 0; i < n; i++) {
            char st;
            pid_t pg;
            proc_stat(left[i], &st, &pg);
            fprintf(stderr, "FAIL: process %d (state %c) survived its parent for 3 s\n",
                    (int)left[i], st);
            kill(left[i], SIGKILL);
        }
        g_failed = 1;
    }
    for (int i = 0; i < g_nbrokers; i++) {
        if (g_brokers[i]->out_fd >= 0)
            close(g_brokers[i]->out_fd);
        for (int k = 0; k < g_brokers[i]->nextra; k++)
            free(g_brokers[i]->extra[k]);
        free(g_brokers[i]);
    }
    for (int i = 0; i < g_nworkers; i++) {
        for (int k = 0; k < g_workers[i]->argc; k++)
            free(g_workers[i]->argv[k]);
        free(g_workers[i]);
    }
    g_nbrokers = g_nworkers = 0;
    if (g_fault_fd >= 0)
        close(g_fault_fd);
    g_fault_fd = -1;
    if (g_failed) {
        fprintf(stderr, "kept temp dir: %s\n", g_tmpdir);
        fflush(stderr);
        _exit(1);
    }
    rm_tmpdir();
}

static void status_text(int st, char *buf, size_t sz)
{
    if (WIFEXITED(st))
        snprintf(buf, sz, "exited with code %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, sz, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, sz, "wait status 0x%x", st);
}

/* Fails at once if a broker or worker that the test did not stop has
 * exited: a crash then reads as a crash, not as a later timeout. */
static void check_deaths(const char *file, int line)
{
    char why[128];
    int st;
    for (int i = 0; i < g_nbrokers; i++) {
        h_broker_t *b = g_brokers[i];
        if (b->expect_alive && reap(b->pid, &st)) {
            b->expect_alive = false;
            status_text(st, why, sizeof why);
            h_fail_at(file, line, NULL, "broker pid %d (log %s) %s unexpectedly", (int)b->pid,
                      b->log, why);
        }
    }
    for (int i = 0; i < g_nworkers; i++) {
        h_worker_t *w = g_workers[i];
        if (w->expect_alive && reap(w->pid, &st)) {
            w->expect_alive = false;
            status_text(st, why, sizeof why);
            h_fail_at(file, line, NULL, "worker %s pid %d (log %s) %s unexpectedly", w->node_id,
                      (int)w->pid, w->log, why);
        }
    }
}

/* On success: stop workers, then brokers, with SIGTERM and require exit 0,
 * so that a crash or an ASan/LSan report at shutdown fails the test. */
static void graceful_stop(void)
{
    const char *skip = getenv("TASKQ_IT_NO_GRACEFUL");
    if (skip && *skip && strcmp(skip, "0") != 0)
        return;
    char why[128];
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? g_nworkers : g_nbrokers;
        for (int i = 0; i < n; i++) {
            pid_t pid = pass == 0 ? g_workers[i]->pid : g_brokers[i]->pid;
            const char *log = pass == 0 ? g_workers[i]->log : g_brokers[i]->log;
            bool expected = pass == 0 ? g_workers[i]->expect_alive : g_brokers[i]->expect_alive;
            int st;
            if (!expected)
                continue;
            if (reap(pid, &st)) {
                status_text(st, why, sizeof why);
                fprintf(stderr, "FAIL: %s pid %d %s before the end of the test\n",
                        pass == 0 ? "worker" : "broker", (int)pid, why);
                s_tail(log);
                g_failed = 1;
                continue;
            }
            kill(pid, SIGTERM);
            int64_t until = tclock_mono_ms() + 15000;
            while (!reap(pid, &st) && tclock_mono_ms() < until)
                sleep_ms(10);
            if (!reap(pid, &st)) {
                fprintf(stderr, "FAIL: %s pid %d did not exit within 15 s of SIGTERM\n",
                        pass == 0 ? "worker" : "broker", (int)pid);
                s_tail(log);
                g_failed = 1;
            } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                status_text(st, why, sizeof why);
                fprintf(stderr, "FAIL: %s pid %d %s on SIGTERM at the end of the test\n",
                        pass == 0 ? "worker" : "broker", (int)pid, why);
                s_tail(log);
                g_failed = 1;
            }
        }
    }
}

/* ---- init, failure ------------------------------------------------------------ */

void h_init(int argc, char **argv)
{
    (void)argc;
    if (g_inited)
        return;
    g_inited = true;
    g_self = getpid();
    g_start_ms = tclock_mono_ms();
    if (argv && argv[0]) {
        const char *b = strrchr(argv[0], '/');
        snprintf(g_name, sizeof g_name, "%s", b ? b + 1 : argv[0]);
    }
    if (getpgrp() != g_self && setpgid(0, 0) != 0)
        fprintf(stderr, "warning: setpgid: %s\n", strerror(errno));
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/taskq-%s-XXXXXX", g_name);
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    const char *bin = getenv("TASKQ_BIN_DIR");
    const char *mod = getenv("TASKQ_TESTMODULE");
    if (!bin || !*bin || !mod || !*mod) {
        fprintf(stderr, "FAIL: TASKQ_BIN_DIR and TASKQ_TESTMODULE must be set (run via ctest)\n");
        rmdir(g_tmpdir);
        exit(1);
    }
    atexit(at_exit);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    h_set_deadline_s(240);
    h_log("temp dir %s", g_tmpdir);
}

void h_set_deadline_s(unsigned seconds)
{
    alarm(seconds);
}

const char *h_tmpdir(void)
{
    return g_tmpdir;
}

int64_t h_now_ms(void)
{
    return tclock_mono_ms();
}

void h_log(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%s +%.3fs] %s\n", g_name, (double)(tclock_mono_ms() - g_start_ms) / 1000.0,
            buf);
    fflush(stderr);
}

void h_fail_at(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fflush(stdout);
    g_failed = 1;
    alarm(0);
    fprintf(stderr, "\nFAIL %s:%d: %s%s%s\n", file, line, cond ? cond : "", cond ? ": " : "",
            buf);
    fflush(stderr);
    s_tail_all();
    fprintf(stderr, "FAIL %s:%d (repeated after the logs): %s\n", file, line, buf);
    exit(1);
}

int64_t h_wait_for_at(const char *file, int line, bool (*cond)(void *), void *arg,
                      int64_t timeout_ms, const char *what)
{
    int64_t t0 = tclock_mono_ms();
    for (;;) {
        check_deaths(file, line);
        if (cond(arg))
            return tclock_mono_ms() - t0;
        if (tclock_mono_ms() - t0 > timeout_ms)
            h_fail_at(file, line, NULL, "timed out after %lld ms waiting for: %s",
                      (long long)timeout_ms, what);
        sleep_ms(15);
    }
}

/* ---- spawning ------------------------------------------------------------------ */

static void bin_path(char *out, size_t outsz, const char *name)
{
    snprintf(out, outsz, "%s/%s", getenv("TASKQ_BIN_DIR"), name);
    if (access(out, X_OK) != 0)
        H_FAIL("binary %s is missing or not executable", out);
}

/* Forks and execs argv with stdout -> out_fd (or log), stderr -> log.
 * env_broker: if not NULL, sets TASKQ_BROKER in the child. Everything the
 * child needs is prepared before fork(): after it, only async-signal-safe
 * calls (the test process has ZeroMQ threads). */
static pid_t spawn(char *const argv[], int out_fd, const char *log, const char *env_broker)
{
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        H_FAIL("open %s: %s", log, strerror(errno));
    add_log(log);
    if (env_broker)
        setenv("TASKQ_BROKER", env_broker, 1);
    pid_t pid = fork();
    if (pid < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        /* child: stays in the test's process group so a group kill gets it */
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(out_fd >= 0 ? out_fd : logfd, 1);
        dup2(logfd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (g_launch_fault_len > 0) {
            /* h_broker_restart_fault: our own fault line, before the broker
             * exists (async-signal-safe: no stdio after fork) */
            char line[sizeof g_launch_fault + 16], dig[16];
            size_t n = g_launch_fault_len;
            int nd = 0;
            memcpy(line, g_launch_fault, n);
            for (unsigned long v = (unsigned long)getpid(); v; v /= 10)
                dig[nd++] = (char)('0' + v % 10);
            while (nd > 0)
                line[n++] = dig[--nd];
            line[n++] = '\n';
            if (write(g_fault_fd, line, n) != (ssize_t)n) {
                s_puts("cannot record the launch fault\n");
                _exit(126); /* no broker without its fault line */
            }
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execv(argv[0], argv);
        s_puts("exec failed: ");
        s_puts(argv[0]);
        s_puts("\n");
        _exit(127);
    }
    if (env_broker)
        unsetenv("TASKQ_BROKER");
    close(logfd);
    track(pid);
    return pid;
}

/* ---- broker ------------------------------------------------------------------- */

/* Reads the `ready endpoint=` line; false if the broker exited first. */
static bool broker_read_ready(h_broker_t *b, int64_t timeout_ms)
{
    char line[512];
    size_t len = 0;
    int64_t t0 = tclock_mono_ms();
    for (;;) {
        int64_t left = timeout_ms - (tclock_mono_ms() - t0);
        if (left <= 0)
            H_FAIL("broker %d: no `ready endpoint=` line on stdout within %lld ms", b->index,
                   (long long)timeout_ms);
        struct pollfd p = {b->out_fd, POLLIN, 0};
        int r = poll(&p, 1, left > 50 ? 50 : (int)left);
        if (r < 0 && errno != EINTR)
            H_FAIL("poll: %s", strerror(errno));
        if (r > 0) {
            ssize_t n = read(b->out_fd, line + len, sizeof line - 1 - len);
            if (n > 0) {
                len += (size_t)n;
                line[len] = '\0';
                char *nl = strchr(line, '\n');
                if (nl) {
                    *nl = '\0';
                    const char *pfx = "ready endpoint=";
                    H_ASSERT(strncmp(line, pfx, strlen(pfx)) == 0,
                             "broker %d: first stdout line is '%s', expected 'ready endpoint=...'",
                             b->index, line);
                    snprintf(b->endpoint, sizeof b->endpoint, "%s", line + strlen(pfx));
                    const char *colon = strrchr(b->endpoint, ':');
                    H_ASSERT(colon && atoi(colon + 1) > 0, "bad endpoint '%s'", b->endpoint);
                    b->port = atoi(colon + 1);
                    b->ready_at = tclock_mono_ms();
                    return true;
                }
                H_ASSERT(len < sizeof line - 1, "broker stdout line too long");
                continue;
            }
            if (n == 0) {
                /* EOF: the broker exited (or closed stdout) */
                int st;
                int64_t until = tclock_mono_ms() + 2000;
                while (!reap(b->pid, &st) && tclock_mono_ms() < until)
                    sleep_ms(10);
                if (reap(b->pid, &st))
                    return false;
                H_FAIL("broker %d closed stdout without printing the ready line", b->index);
            }
        }
        int st;
        if (reap(b->pid, &st))
            return false;
    }
}

static void broker_launch(h_broker_t *b, const char *bind)
{
    char *argv[48];
    int k = 0;
    char path[H_PATH_MAX];
    bin_path(path, sizeof path, "taskq-broker");
    argv[k++] = path;
    argv[k++] = "--bind";
    argv[k++] = (char *)bind;
    argv[k++] = "--db";
    argv[k++] = b->db;
    for (int i = 0; i < b->nextra; i++)
        argv[k++] = b->extra[i];
    argv[k] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        H_FAIL("pipe: %s", strerror(errno));
    b->index = ++g_nbroker_runs; /* one log file per run */
    snprintf(b->log, sizeof b->log, "%s/broker.%d.log", g_tmpdir, b->index);
    if (g_launch_kind[0] && g_hist[0]) {
        fault_fd_open();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int n = snprintf(g_launch_fault, sizeof g_launch_fault, "%lld fault %d fault %s ",
                         (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000, (int)getpid(),
                         g_launch_kind);
        H_ASSERT(n > 0 && n < (int)sizeof g_launch_fault, "launch fault line too long");
        g_launch_fault_len = (size_t)n;
    }
    b->pid = spawn(argv, fds[1], b->log, NULL);
    g_launch_fault_len = 0;
    if (g_launch_kind[0])
        h_log("fault %s %d (recorded by that process before exec)", g_launch_kind, (int)b->pid);
    close(fds[1]);
    if (b->out_fd >= 0)
        close(b->out_fd);
    b->out_fd = fds[0];
}

static h_broker_t *broker_start_va(const char *bind, const char *db, va_list ap);

h_broker_t *h_broker_start_v(const char *db, ...)
{
    va_list ap;
    va_start(ap, db);
    h_broker_t *b = broker_start_va("tcp://127.0.0.1:*", db, ap);
    va_end(ap);
    return b;
}

h_broker_t *h_broker_start_at_v(const char *bind, const char *db, ...)
{
    va_list ap;
    va_start(ap, db);
    h_broker_t *b = broker_start_va(bind, db, ap);
    va_end(ap);
    return b;
}

static h_broker_t *broker_start_va(const char *bind, const char *db, va_list ap)
{
    h_broker_t *b = calloc(1, sizeof *b);
    H_ASSERT(b != NULL, "out of memory");
    b->out_fd = -1;
    if (db)
        snprintf(b->db, sizeof b->db, "%s", db);
    else
        snprintf(b->db, sizeof b->db, "%s/taskq.db", g_tmpdir);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        H_ASSERT(b->nextra < 32, "too many broker args");
        b->extra[b->nextra++] = strdup(a);
    }
    H_ASSERT(g_nbrokers < 16, "too many brokers");
    g_brokers[g_nbrokers++] = b; /* freed by the exit sweep */
    const char *colon = strrchr(bind, ':');
    H_ASSERT(colon && strncmp(bind, "tcp://", 6) == 0 && (size_t)(colon - bind) < sizeof b->bind_host,
             "bind endpoint '%s' is not tcp://HOST:PORT", bind);
    snprintf(b->bind_host, sizeof b->bind_host, "%.*s", (int)(colon - bind), bind);
    broker_launch(b, bind);
    if (!broker_read_ready(b, 10000)) {
        int st = 0;
        reap(b->pid, &st);
        H_FAIL("broker %d exited before ready (status 0x%x)", b->index, st);
    }
    b->expect_alive = true;
    h_log("broker %d pid %d ready at %s", b->index, (int)b->pid, b->endpoint);
    return b;
}

const char *h_broker_endpoint(const h_broker_t *b)
{
    return b->endpoint;
}

pid_t h_broker_pid(const h_broker_t *b)
{
    return b->pid;
}

const char *h_broker_db(const h_broker_t *b)
{
    return b->db;
}

int64_t h_broker_ready_at(const h_broker_t *b)
{
    return b->ready_at;
}

static int wait_exit(pid_t pid, int64_t timeout_ms, const char *what)
{
    int st = 0;
    int64_t t0 = tclock_mono_ms();
    while (!reap(pid, &st)) {
        if (tclock_mono_ms() - t0 > timeout_ms)
            H_FAIL("%s (pid %d) did not exit within %lld ms", what, (int)pid,
                   (long long)timeout_ms);
        sleep_ms(10);
    }
    return st;
}

int h_broker_kill(h_broker_t *b, int sig)
{
    b->expect_alive = false;
    if (sig == SIGKILL && g_hist[0])
        h_fault("kill_broker", "%d", (int)b->pid);
    if (!reap(b->pid, NULL))
        kill(b->pid, sig);
    int st = wait_exit(b->pid, 10000, "broker");
    h_log("broker %d pid %d exited (status 0x%x) after signal %d", b->index, (int)b->pid, st,
          sig);
    return st;
}

void h_broker_restart(h_broker_t *b)
{
    H_ASSERT(reap(b->pid, NULL), "h_broker_restart: broker %d is still running", b->index);
    char bind[192];
    snprintf(bind, sizeof bind, "%s:%d", b->bind_host, b->port);
    char old_ep[512];
    snprintf(old_ep, sizeof old_ep, "%s", b->endpoint);
    int64_t t0 = tclock_mono_ms();
    for (int attempt = 1;; attempt++) {
        broker_launch(b, bind);
        if (broker_read_ready(b, 10000))
            break;
        /* exited before ready: most likely the port is still in TIME_WAIT */
        if (tclock_mono_ms() - t0 > 5000)
            H_FAIL("broker restart on %s failed for 5 s (%d attempts)", bind, attempt);
        sleep_ms(100); /* back-off between bind attempts, not synchronisation */
    }
    H_ASSERT(strcmp(old_ep, b->endpoint) == 0, "restarted broker reports %s, expected %s",
             b->endpoint, old_ep);
    b->expect_alive = true;
    if (g_hist[0])
        h_fault("restart_broker", "%d", (int)b->pid);
    h_log("broker restarted as %d pid %d at %s", b->index, (int)b->pid, b->endpoint);
}

void h_broker_restart_fault(h_broker_t *b, const char *kind)
{
    int n = snprintf(g_launch_kind, sizeof g_launch_kind, "%s", kind);
    H_ASSERT(n > 0 && n < (int)sizeof g_launch_kind && !strchr(kind, ' '),
             "bad fault kind '%s'", kind);
    h_broker_restart(b);
    g_launch_kind[0] = '\0';
}

/* ---- worker ------------------------------------------------------------------- */

static h_worker_t *worker_start_va(const char *netns, const char *endpoint, int n, va_list ap)
{
    h_worker_t *w = calloc(1, sizeof *w);
    H_ASSERT(w != NULL, "out of memory");
    H_ASSERT(g_nworkers < 32, "too many workers");
    g_workers[g_nworkers++] = w;
    w->index = g_nworkers;
    snprintf(w->node_id, sizeof w->node_id, "it-%d", w->index);
    snprintf(w->log, sizeof w->log, "%s/worker.%d.log", g_tmpdir, w->index);
    char path[H_PATH_MAX], nbuf[16];
    bin_path(path, sizeof path, "taskq-worker");
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *argv[56];
    int k = 0;
    if (netns) {
        H_ASSERT(g_ip_path[0], "h_worker_start_ns before h_netns_create");
        argv[k++] = g_ip_path;
        argv[k++] = "netns";
        argv[k++] = "exec";
        argv[k++] = netns;
    }
    argv[k++] = path;
    argv[k++] = "--broker";
    argv[k++] = endpoint;
    argv[k++] = "-n";
    argv[k++] = nbuf;
    argv[k++] = "--module";
    argv[k++] = getenv("TASKQ_TESTMODULE");
    argv[k++] = "--node-id";
    argv[k++] = w->node_id;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        H_ASSERT(k < 54, "too many worker args");
        argv[k++] = a;
    }
    for (int i = 0; i < k; i++) {
        w->argv[i] = strdup(argv[i]);
        H_ASSERT(w->argv[i] != NULL, "out of memory");
    }
    w->argc = k;
    w->argv[k] = NULL;
    w->pid = spawn(w->argv, -1, w->log, NULL);
    w->expect_alive = true;
    h_log("worker %s pid %d started (-n %d%s%s)", w->node_id, (int)w->pid, n,
          netns ? ", netns " : "", netns ? netns : "");
    return w;
}

h_worker_t *h_worker_start_v(const char *endpoint, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    h_worker_t *w = worker_start_va(NULL, endpoint, n, ap);
    va_end(ap);
    return w;
}

h_worker_t *h_worker_start_ns_v(const char *netns, const char *endpoint, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    h_worker_t *w = worker_start_va(netns, endpoint, n, ap);
    va_end(ap);
    return w;
}

const char *h_worker_node_id(const h_worker_t *w)
{
    return w->node_id;
}

pid_t h_worker_pid(const h_worker_t *w)
{
    return w->pid;
}

void h_worker_signal(h_worker_t *w, int sig)
{
    w->expect_alive = false;
    if (!reap(w->pid, NULL))
        kill(w->pid, sig);
}

int h_worker_wait_exit(h_worker_t *w, int64_t timeout_ms)
{
    return wait_exit(w->pid, timeout_ms, w->node_id);
}

typedef struct {
    taskq_client_t *c;
    const char *node;
    size_t n_idle;
    size_t seen_idle;
    taskq_err_t last_err;
} ready_arg_t;

static bool ready_cond(void *p)
{
    ready_arg_t *a = p;
    taskq_workers_t *ws = NULL;
    a->last_err = taskq_workers(a->c, &ws);
    if (a->last_err != TASKQ_OK)
        return false;
    bool ok = false;
    for (size_t i = 0; i < taskq_workers_count(ws); i++) {
        const taskq_node_info_t *n = taskq_workers_node(ws, i);
        if (!n || !n->id || strcmp(n->id, a->node) != 0)
            continue;
        size_t idle = 0;
        for (size_t k = 0; k < n->nchildren; k++)
            if (n->children[k].state && strcmp(n->children[k].state, "idle") == 0)
                idle++;
        a->seen_idle = idle;
        ok = idle >= a->n_idle;
    }
    taskq_workers_destroy(&ws);
    return ok;
}

void h_worker_wait_ready(taskq_client_t *c, const char *node_id, size_t n_idle,
                         int64_t timeout_ms)
{
    ready_arg_t a = {c, node_id, n_idle, 0, TASKQ_OK};
    char what[256];
    snprintf(what, sizeof what, "worker node %s with %zu idle children in taskq_workers()",
             node_id, n_idle);
    int64_t ms = h_wait_for(ready_cond, &a, timeout_ms, what);
    h_log("worker %s ready with %zu idle children (%lld ms)", node_id, a.seen_idle,
          (long long)ms);
}

/* ---- CLI ---------------------------------------------------------------------- */

int h_run_cli_v(char *out, size_t outsz, int64_t *elapsed_ms, const char *broker, ...)
{
    char path[H_PATH_MAX], log[H_PATH_MAX];
    bin_path(path, sizeof path, "taskq");
    char *argv[48];
    int k = 0;
    argv[k++] = path;
    va_list ap;
    va_start(ap, broker);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL) {
        H_ASSERT(k < 46, "too many cli args");
        argv[k++] = a;
    }
    va_end(ap);
    argv[k] = NULL;
    snprintf(log, sizeof log, "%s/cli.%d.log", g_tmpdir, ++g_ncli);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        H_FAIL("pipe: %s", strerror(errno));
    int64_t t0 = tclock_mono_ms();
    pid_t pid = spawn(argv, fds[1], log, broker);
    close(fds[1]);
    size_t len = 0;
    if (outsz > 0)
        out[0] = '\0';
    char sink[512];
    for (;;) {
        int64_t left = 30000 - (tclock_mono_ms() - t0);
        if (left <= 0) {
            kill(pid, SIGKILL);
            close(fds[0]);
            H_FAIL("`taskq %s ...` ran longer than 30 s", argv[1] ? argv[1] : "");
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n;
        if (outsz > 0 && len < outsz - 1)
            n = read(fds[0], out + len, outsz - 1 - len);
        else
            n = read(fds[0], sink, sizeof sink);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (outsz > 0 && len < outsz - 1) {
            len += (size_t)n;
            out[len] = '\0';
        }
    }
    close(fds[0]);
    int st = wait_exit(pid, 30000 - (tclock_mono_ms() - t0) + 100, "taskq CLI");
    if (elapsed_ms)
        *elapsed_ms = tclock_mono_ms() - t0;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    char cmd[512] = "";
    size_t cl = 0;
    for (int i = 1; argv[i] && cl < sizeof cmd - 1; i++)
        cl += (size_t)snprintf(cmd + cl, sizeof cmd - cl, "%s%s", i > 1 ? " " : "", argv[i]);
    h_log("cli: taskq %s -> exit %d (%lld ms), stdout %zu bytes", cmd, code,
          (long long)(tclock_mono_ms() - t0), len);
    return code;
}

/* ---- client and msgpack helpers -------------------------------------------- */

taskq_client_t *h_client(const char *endpoint, int64_t timeout_ms)
{
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(endpoint, &err);
    H_ASSERT(c != NULL, "taskq_client_new(%s): %s", endpoint, taskq_err_name(err));
    taskq_client_set_timeout(c, timeout_ms);
    return c;
}

static size_t pack_done(msgpack_sbuffer *sb, uint8_t *out, size_t outsz)
{
    H_ASSERT(sb->size <= outsz, "args buffer too small (%zu > %zu)", sb->size, outsz);
    size_t n = sb->size;
    memcpy(out, sb->data, n);
    msgpack_sbuffer_destroy(sb);
    return n;
}

size_t h_args_int(uint8_t *out, size_t outsz, int64_t v)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int64(&pk, v);
    return pack_done(&sb, out, outsz);
}

size_t h_args_str(uint8_t *out, size_t outsz, const char *s)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
    return pack_done(&sb, out, outsz);
}

bool h_result_int(const void *data, size_t len, int64_t *v)
{
    if (!data || len == 0)
        return false;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool ok = false;
    if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len) {
        if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && u.data.via.u64 <= INT64_MAX) {
            *v = (int64_t)u.data.via.u64;
            ok = true;
        } else if (u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            *v = u.data.via.i64;
            ok = true;
        }
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

taskq_task_t *h_status(taskq_client_t *c, const taskq_id_t *id)
{
    taskq_task_t *t = NULL;
    taskq_err_t rc = taskq_status(c, id, &t);
    if (rc == TASKQ_ENOTFOUND || rc == TASKQ_EPURGED)
        return NULL; /* no record: never existed, or purged after its TTL */
    H_ASSERT(rc == TASKQ_OK && t != NULL, "taskq_status(%s): %s", h_id_str(id),
             taskq_err_name(rc));
    return t;
}

const char *h_id_str(const taskq_id_t *id)
{
    static char bufs[4][TASKQ_ID_STRLEN + 1];
    static int next;
    char *b = bufs[next++ % 4];
    taskq_id_format(id, b);
    return b;
}

taskq_task_spec_t h_spec(const char *name, const void *args, size_t args_len)
{
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.args = args;
    s.args_len = args_len;
    return s;
}

void h_submit(taskq_client_t *c, taskq_id_t *id, const char *name, const void *args,
              size_t args_len, int64_t time_limit_ms, uint32_t max_attempts)
{
    taskq_task_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.name = name;
    spec.args = args;
    spec.args_len = args_len;
    spec.time_limit_ms = time_limit_ms;
    spec.max_attempts = max_attempts;
    taskq_err_t rc = taskq_submit(c, &spec);
    H_ASSERT(rc == TASKQ_OK, "taskq_submit(%s): %s", name, taskq_err_name(rc));
    H_ASSERT(!taskq_id_is_zero(&spec.id), "taskq_submit did not write back the id");
    *id = spec.id;
}

taskq_task_t *h_wait_task_at(const char *file, int line, taskq_client_t *c,
                             const taskq_id_t *id, h_task_pred pred, void *arg,
                             int64_t timeout_ms, const char *what)
{
    int64_t t0 = tclock_mono_ms();
    char last[256] = "no record yet";
    for (;;) {
        check_deaths(file, line);
        taskq_task_t *t = NULL;
        taskq_err_t rc = taskq_status(c, id, &t);
        if (rc == TASKQ_OK && t) {
            if (pred(t, arg))
                return t;
            snprintf(last, sizeof last,
                     "state=%s attempts=%u worker='%s' child_pid=%d progress=%llu/%llu error='%s'",
                     taskq_state_name(t->state), t->attempts, t->worker ? t->worker : "(null)",
                     (int)t->child_pid, (unsigned long long)t->progress_current,
                     (unsigned long long)t->progress_total, t->error ? t->error : "(null)");
            taskq_task_destroy(&t);
        } else if (rc != TASKQ_ENOTFOUND && rc != TASKQ_ETIMEDOUT) {
            h_fail_at(file, line, NULL, "taskq_status(%s) while waiting for %s: %s",
                      h_id_str(id), what, taskq_err_name(rc));
        }
        if (tclock_mono_ms() - t0 > timeout_ms)
            h_fail_at(file, line, NULL,
                      "timed out after %lld ms waiting for task %s: %s (last seen: %s)",
                      (long long)timeout_ms, h_id_str(id), what, last);
        sleep_ms(20);
    }
}

/* ---- dispatch-policy tests (issue 6) ------------------------------------------ */

size_t h_args_fmt(uint8_t *out, size_t outsz, const char *fmt, ...)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, strlen(fmt));
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
        case 'd':
            msgpack_pack_int64(&pk, va_arg(ap, int));
            break;
        case 'l':
            msgpack_pack_int64(&pk, va_arg(ap, long long));
            break;
        case 'f':
            msgpack_pack_double(&pk, va_arg(ap, double));
            break;
        case 's': {
            const char *v = va_arg(ap, const char *);
            msgpack_pack_str_with_body(&pk, v, strlen(v));
            break;
        }
        default:
            va_end(ap);
            msgpack_sbuffer_destroy(&sb);
            H_FAIL("h_args_fmt: bad format character '%c'", *f);
        }
    }
    va_end(ap);
    return pack_done(&sb, out, outsz);
}

h_lines_t h_read_lines(const char *path)
{
    h_lines_t l = {0, NULL};
    FILE *f = fopen(path, "re");
    if (!f) {
        H_ASSERT(errno == ENOENT, "open %s: %s", path, strerror(errno));
        return l;
    }
    size_t cap = 0;
    char *buf = NULL;
    size_t bufsz = 0;
    ssize_t n;
    while ((n = getline(&buf, &bufsz, f)) >= 0) {
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        if (l.n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = realloc(l.line, cap * sizeof *nl);
            H_ASSERT(nl != NULL, "out of memory");
            l.line = nl;
        }
        l.line[l.n] = strdup(buf);
        H_ASSERT(l.line[l.n] != NULL, "out of memory");
        l.n++;
    }
    free(buf);
    fclose(f);
    return l;
}

void h_lines_free(h_lines_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->line[i]);
    free(l->line);
    l->line = NULL;
    l->n = 0;
}

size_t h_count_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        H_ASSERT(errno == ENOENT, "open %s: %s", path, strerror(errno));
        return 0;
    }
    size_t n = 0;
    int ch;
    while ((ch = getc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

const char *h_cli_last_log(void)
{
    static char path[H_PATH_MAX];
    if (g_ncli == 0)
        return "";
    snprintf(path, sizeof path, "%s/cli.%d.log", g_tmpdir, g_ncli);
    return path;
}

bool h_queue_info(taskq_client_t *c, const char *queue, taskq_queue_info_t *out)
{
    taskq_queues_t *qs = NULL;
    H_OK(taskq_queues(c, &qs));
    bool found = false;
    for (size_t i = 0; i < taskq_queues_count(qs); i++) {
        const taskq_queue_info_t *q = taskq_queues_get(qs, i);
        if (q && q->name && strcmp(q->name, queue) == 0) {
            *out = *q;
            out->name = NULL;
            found = true;
            break;
        }
    }
    taskq_queues_destroy(&qs);
    return found;
}

uint64_t h_queue_total(taskq_client_t *c, const char *queue)
{
    taskq_queue_info_t q;
    if (!h_queue_info(c, queue, &q))
        return 0;
    uint64_t n = 0;
    for (int s = 0; s < TASKQ_NSTATES; s++)
        n += q.counts[s];
    return n;
}

int64_t h_clock(taskq_client_t *c, int64_t advance_ms, int64_t set_ms)
{
    int64_t now = 0;
    taskq_err_t rc = taskq_test_clock(c, advance_ms, set_ms, &now);
    H_ASSERT(rc == TASKQ_OK, "taskq_test_clock(advance %lld, set %lld): %s '%s'",
             (long long)advance_ms, (long long)set_ms, taskq_err_name(rc),
             taskq_client_last_error(c));
    return now;
}

unsigned h_seed(void)
{
    const char *s = getenv("TASKQ_IT_SEED");
    unsigned seed;
    if (s && *s)
        seed = (unsigned)strtoul(s, NULL, 0);
    else
        seed = (unsigned)(time(NULL) ^ ((unsigned)getpid() << 16));
    h_log("random seed %u (repeat with TASKQ_IT_SEED=%u)", seed, seed);
    return seed;
}

/* ---- fault tests: history, injected faults, node control ------------------- */

/* Opens TMP/hist/fault.<pid>.hist once (history must be enabled). */
static void fault_fd_open(void)
{
    if (g_fault_fd >= 0)
        return;
    char path[H_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/fault.%d.hist", g_hist, (int)getpid());
    g_fault_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_fault_fd < 0)
        H_FAIL("open %s: %s", path, strerror(errno));
}

const char *h_history_enable(void)
{
    if (g_hist[0])
        return g_hist;
    snprintf(g_hist, sizeof g_hist, "%s/hist", g_tmpdir);
    if (mkdir(g_hist, 0755) != 0 && errno != EEXIST)
        H_FAIL("mkdir %s: %s", g_hist, strerror(errno));
    /* inherited by every process spawned from now on, and read by the
     * test's own libtaskq handles (their submit_ack lines are the record of
     * what was acknowledged) */
    setenv("TASKQ_HISTORY", g_hist, 1);
    return g_hist;
}

const char *h_history_dir(void)
{
    return g_hist[0] ? g_hist : NULL;
}

void h_fault(const char *kind, const char *target_fmt, ...)
{
    char target[128];
    va_list ap;
    va_start(ap, target_fmt);
    vsnprintf(target, sizeof target, target_fmt, ap);
    va_end(ap);
    h_log("fault %s %s", kind, target);
    if (!g_hist[0])
        return;
    fault_fd_open();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long us = (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
    char line[256];
    int n = snprintf(line, sizeof line, "%lld fault %d fault %s %s\n", us, (int)getpid(), kind,
                     target);
    /* one write: a line is never split, whatever else appends */
    if (n <= 0 || n >= (int)sizeof line || write(g_fault_fd, line, (size_t)n) != n)
        H_FAIL("cannot record fault %s %s", kind, target);
}

int h_worker_children(const h_worker_t *w, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        char *endp;
        long v = strtol(e->d_name, &endp, 10);
        if (*endp != '\0' || v <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", v);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        char st;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &st, &ppid) != 2)
            continue;
        if (ppid == (int)w->pid && st != 'Z' && st != 'X')
            out[n++] = (pid_t)v;
    }
    closedir(d);
    return n;
}

void h_worker_kill_child(h_worker_t *w, pid_t child)
{
    h_fault("kill_child", "%d", (int)child);
    (void)w;
    kill(child, SIGKILL);
}

void h_worker_kill_node(h_worker_t *w)
{
    h_fault("kill_node", "%s", w->node_id);
    w->expect_alive = false;
    if (!reap(w->pid, NULL))
        kill(w->pid, SIGKILL);
    wait_exit(w->pid, 10000, w->node_id);
}

void h_worker_restart(h_worker_t *w)
{
    H_ASSERT(reap(w->pid, NULL), "h_worker_restart: %s (pid %d) is still running", w->node_id,
             (int)w->pid);
    w->pid = spawn(w->argv, -1, w->log, NULL);
    w->expect_alive = true;
    h_fault("restart_node", "%s", w->node_id);
    h_log("worker %s restarted as pid %d", w->node_id, (int)w->pid);
}

static void signal_node(h_worker_t *w, int sig)
{
    pid_t kids[TQ_SLOTS_MAX_H];
    int n = h_worker_children(w, kids, TQ_SLOTS_MAX_H);
    kill(w->pid, sig);
    for (int i = 0; i < n; i++)
        kill(kids[i], sig);
}

void h_worker_stop(h_worker_t *w)
{
    h_fault("stop_node", "%s", w->node_id);
    signal_node(w, SIGSTOP);
}

void h_worker_cont(h_worker_t *w)
{
    h_fault("cont_node", "%s", w->node_id);
    signal_node(w, SIGCONT);
}

bool h_scale_full(void)
{
    const char *s = getenv("TASKQ_FAULT_SCALE");
    return s && strcmp(s, "full") == 0;
}

long h_scale(long ci, long full)
{
    return h_scale_full() ? full : ci;
}

bool h_sanitized(void)
{
#ifdef TASKQ_SANITIZED
    return true;
#else
    return false;
#endif
}

/* Runs `ip ARGS...` (NULL-terminated); returns its exit code. */
static int run_ip(const char *a0, ...)
{
    char *argv[16];
    int k = 0;
    argv[k++] = g_ip_path;
    argv[k++] = (char *)a0;
    va_list ap;
    va_start(ap, a0);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && k < 15)
        argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    return s_run_ip(argv);
}

bool h_netns_create(h_netns_t *ns, char *why, size_t whysz)
{
    memset(ns, 0, sizeof *ns);
    if (geteuid() != 0) {
        snprintf(why, whysz, "network namespaces need root (euid %d)", (int)geteuid());
        return false;
    }
    if (!g_ip_path[0]) {
        static const char *cands[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
        for (size_t i = 0; i < sizeof cands / sizeof *cands && !g_ip_path[0]; i++)
            if (access(cands[i], X_OK) == 0)
                snprintf(g_ip_path, sizeof g_ip_path, "%s", cands[i]);
    }
    if (!g_ip_path[0]) {
        snprintf(why, whysz, "the `ip` command (iproute2) is not installed");
        return false;
    }
    if (g_nnetns >= H_MAX_NETNS) {
        snprintf(why, whysz, "too many namespaces");
        return false;
    }
    int i = g_nnetns;
    int pid = (int)getpid();
    char peer[32], veth[32];
    snprintf(ns->name, sizeof ns->name, "taskq-%d%s%.0d", pid, i ? "-" : "", i);
    /* interface names: at most 15 bytes (IFNAMSIZ - 1) */
    snprintf(veth, sizeof veth, "tqv%d%c", pid % 10000000, 'a' + i);
    snprintf(peer, sizeof peer, "tqp%d%c", pid % 10000000, 'a' + i);
    snprintf(ns->veth, sizeof ns->veth, "%.15s", veth);
    int x = pid % 250 + 1, y = i * 4;
    snprintf(ns->host_ip, sizeof ns->host_ip, "10.231.%d.%d", x, y + 1);
    snprintf(ns->ns_ip, sizeof ns->ns_ip, "10.231.%d.%d", x, y + 2);
    /* registered first: the exit paths delete it even if a step fails */
    snprintf(g_netns[i].name, sizeof g_netns[i].name, "%s", ns->name);
    snprintf(g_netns[i].veth, sizeof g_netns[i].veth, "%s", ns->veth);
    g_nnetns = i + 1;
    char host_cidr[48], ns_cidr[48];
    snprintf(host_cidr, sizeof host_cidr, "%s/30", ns->host_ip);
    snprintf(ns_cidr, sizeof ns_cidr, "%s/30", ns->ns_ip);
    const char *step = NULL;
    if (run_ip("netns", "add", ns->name, NULL) != 0)
        step = "ip netns add";
    else if (run_ip("link", "add", ns->veth, "type", "veth", "peer", "name", peer, NULL) != 0)
        step = "ip link add veth";
    else if (run_ip("link", "set", peer, "netns", ns->name, NULL) != 0)
        step = "ip link set netns";
    else if (run_ip("addr", "add", host_cidr, "dev", ns->veth, NULL) != 0)
        step = "ip addr add (root side)";
    else if (run_ip("link", "set", ns->veth, "up", NULL) != 0)
        step = "ip link set up (root side)";
    else if (run_ip("netns", "exec", ns->name, g_ip_path, "addr", "add", ns_cidr, "dev", peer,
                    NULL) != 0)
        step = "ip addr add (namespace side)";
    else if (run_ip("netns", "exec", ns->name, g_ip_path, "link", "set", peer, "up", NULL) != 0)
        step = "ip link set up (namespace side)";
    else if (run_ip("netns", "exec", ns->name, g_ip_path, "link", "set", "lo", "up", NULL) != 0)
        step = "ip link set lo up";
    if (step) {
        snprintf(why, whysz, "%s failed (no CAP_NET_ADMIN or no veth support?)", step);
        s_netns_cleanup();
        return false;
    }
    h_log("netns %s: %s (%s) <-> %s (%s)", ns->name, ns->veth, ns->host_ip, peer, ns->ns_ip);
    return true;
}

void h_netns_partition(const h_netns_t *ns, const char *node, bool down)
{
    h_fault(down ? "partition_node" : "heal_node", "%s", node);
    /* the root side down: every packet to or from the namespace is dropped;
     * loopback traffic to the root side's address still works */
    if (run_ip("link", "set", ns->veth, down ? "down" : "up", NULL) != 0)
        H_FAIL("ip link set %s %s failed", ns->veth, down ? "down" : "up");
}

/* ---- lifecycle tests (issue 7) ------------------------------------------------- */

void h_nap_ms(int64_t ms)
{
    if (ms > 0)
        sleep_ms(ms);
}

static bool is_hex_at(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
              (p[i] >= 'A' && p[i] <= 'F')))
            return false;
    return true;
}

size_t h_parse_ids(const char *text, taskq_id_t *ids, size_t max)
{
    size_t found = 0, len = strlen(text);
    for (size_t i = 0; i + TASKQ_ID_STRLEN <= len;) {
        const char *p = text + i;
        bool shape = is_hex_at(p, 8) && p[8] == '-' && is_hex_at(p + 9, 4) && p[13] == '-' &&
                     is_hex_at(p + 14, 4) && p[18] == '-' && is_hex_at(p + 19, 4) &&
                     p[23] == '-' && is_hex_at(p + 24, 12) &&
                     (i == 0 || !is_hex_at(p - 1, 1)) &&
                     (i + TASKQ_ID_STRLEN == len || !is_hex_at(p + TASKQ_ID_STRLEN, 1));
        char buf[TASKQ_ID_STRLEN + 1];
        taskq_id_t id;
        if (shape) {
            memcpy(buf, p, TASKQ_ID_STRLEN);
            buf[TASKQ_ID_STRLEN] = '\0';
            if (taskq_id_parse(buf, &id) == TASKQ_OK) {
                if (found < max)
                    ids[found] = id;
                found++;
                i += TASKQ_ID_STRLEN;
                continue;
            }
        }
        i++;
    }
    return found;
}

typedef struct {
    char *out;
    size_t sz, len;
    bool full;
} h_tbuf_t;

static void tb_put(h_tbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_put(h_tbuf_t *b, const char *fmt, ...)
{
    if (b->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->out + b->len, b->sz - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->sz - b->len) {
        b->full = true;
        if (b->sz >= 4)
            memcpy(b->out + b->sz - 4, "...", 4);
        return;
    }
    b->len += (size_t)n;
}

static void tb_obj(h_tbuf_t *b, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        tb_put(b, "nil");
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        tb_put(b, "%s", o->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        tb_put(b, "%llu", (unsigned long long)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        tb_put(b, "%lld", (long long)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        tb_put(b, "%g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR:
        tb_put(b, "\"%.*s\"", (int)o->via.str.size, o->via.str.ptr);
        break;
    case MSGPACK_OBJECT_BIN:
        tb_put(b, "b'");
        for (uint32_t i = 0; i < o->via.bin.size; i++)
            tb_put(b, "%02x", (unsigned char)o->via.bin.ptr[i]);
        tb_put(b, "'");
        break;
    case MSGPACK_OBJECT_ARRAY:
        tb_put(b, "[");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                tb_put(b, ",");
            tb_obj(b, &o->via.array.ptr[i]);
        }
        tb_put(b, "]");
        break;
    case MSGPACK_OBJECT_MAP:
        tb_put(b, "{");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (i)
                tb_put(b, ",");
            tb_obj(b, &o->via.map.ptr[i].key);
            tb_put(b, ":");
            tb_obj(b, &o->via.map.ptr[i].val);
        }
        tb_put(b, "}");
        break;
    default:
        tb_put(b, "<ext>");
        break;
    }
}

bool h_msgpack_text(const void *data, size_t len, char *out, size_t outsz)
{
    H_ASSERT(out && outsz >= 8, "h_msgpack_text: output buffer too small");
    out[0] = '\0';
    if (!data || len == 0) {
        snprintf(out, outsz, "(no bytes)");
        return false;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool ok = msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len;
    if (ok) {
        h_tbuf_t b = {out, outsz, 0, false};
        tb_obj(&b, &u.data);
    } else {
        snprintf(out, outsz, "(not one msgpack value: %zu bytes)", len);
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

static char g_expects[8192];
static size_t g_nexpects;

void h_expect_at(const char *file, int line, const char *cond, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    h_log("EXPECT FAILED %s:%d: %s%s%s", base ? base + 1 : file, line, cond ? cond : "",
          cond ? ": " : "", msg);
    size_t l = strlen(g_expects);
    if (l < sizeof g_expects - 1)
        snprintf(g_expects + l, sizeof g_expects - l, "\n  %s:%d: %s", base ? base + 1 : file,
                 line, msg);
    g_nexpects++;
}

void h_check_expects(void)
{
    if (g_nexpects > 0)
        H_FAIL("%zu soft assertion(s) failed:%s", g_nexpects, g_expects);
}
