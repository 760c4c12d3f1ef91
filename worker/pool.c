#define _GNU_SOURCE
/*
 * pool.c - child slots: the transition table, fork+exec, kill and reap.
 */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tclock.h"
#include "tlog.h"
#include "tmem.h"

/* The child's end of the socketpair always lands on this descriptor. */
#define CHILD_FD 3

struct pool {
    size_t n;
    pool_slot_t *slots;
    char *exe;
    char **argv; /* built once, so the forked child never allocates */
};

pool_t *pool_new(size_t n, const char *exe, const char *const *modules, size_t nmodules)
{
    pool_t *self = xcalloc(1, sizeof *self);
    self->n = n;
    self->slots = xcalloc(n ? n : 1, sizeof *self->slots);
    for (size_t i = 0; i < n; i++) {
        self->slots[i].index = i;
        self->slots[i].fd = -1;
        self->slots[i].state = POOL_DEAD;
    }
    self->exe = xstrdup(exe);
    self->argv = xcalloc(4 + 2 * nmodules, sizeof *self->argv);
    size_t k = 0;
    self->argv[k++] = xstrdup("taskq-worker");
    self->argv[k++] = xstrdup("--child");
    self->argv[k++] = xstrdup("3");
    for (size_t i = 0; i < nmodules; i++) {
        self->argv[k++] = xstrdup("--module");
        self->argv[k++] = xstrdup(modules[i]);
    }
    self->argv[k] = NULL;
    return self;
}

void pool_destroy(pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pool_t *self = *self_p;
    for (char **a = self->argv; *a; a++)
        free(*a);
    free(self->argv);
    free(self->exe);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

size_t pool_size(const pool_t *self) { return self->n; }

pool_slot_t *pool_slot(pool_t *self, size_t i) { return i < self->n ? &self->slots[i] : NULL; }

size_t pool_count(const pool_t *self, pool_state_t state)
{
    size_t c = 0;
    for (size_t i = 0; i < self->n; i++)
        c += self->slots[i].state == state;
    return c;
}

pool_slot_t *pool_find_pid(pool_t *self, pid_t pid)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->slots[i].state != POOL_DEAD && self->slots[i].pid == pid)
            return &self->slots[i];
    return NULL;
}

pool_slot_t *pool_find_task(pool_t *self, const taskq_id_t *id, uint32_t attempt)
{
    for (size_t i = 0; i < self->n; i++) {
        pool_slot_t *s = &self->slots[i];
        if (s->state == POOL_BUSY && s->has_task && s->attempt == attempt &&
            !memcmp(s->task_id.b, id->b, sizeof id->b))
            return s;
    }
    return NULL;
}

const char *pool_state_name(pool_state_t state)
{
    switch (state) {
    case POOL_STARTING: return "starting";
    case POOL_IDLE: return "idle";
    case POOL_BUSY: return "busy";
    case POOL_STOPPING: return "stopping";
    case POOL_DEAD: return "dead";
    }
    return "unknown";
}

const char *pool_event_name(pool_event_t ev)
{
    static const char *names[] = {"spawn", "ready", "assign", "done", "stop", "kill", "exit"};
    return (unsigned)ev < sizeof names / sizeof names[0] ? names[ev] : "unknown";
}

#define X -1
/* next[state][event]; X = illegal. Rows: STARTING IDLE BUSY STOPPING DEAD.
 * Columns: SPAWN READY ASSIGN DONE STOP KILL EXIT. A busy child is never
 * sent STOP: it gets it after its DONE, so that no task is cut short. */
static const int next_state[5][7] = {
    /* STARTING */ {X, POOL_IDLE, X, X, POOL_STOPPING, POOL_STOPPING, POOL_DEAD},
    /* IDLE     */ {X, X, POOL_BUSY, X, POOL_STOPPING, POOL_STOPPING, POOL_DEAD},
    /* BUSY     */ {X, X, X, POOL_IDLE, X, POOL_STOPPING, POOL_DEAD},
    /* STOPPING */ {X, X, X, X, X, POOL_STOPPING, POOL_DEAD},
    /* DEAD     */ {POOL_STARTING, X, X, X, X, X, X},
};
#undef X

taskq_err_t pool_on(pool_slot_t *slot, pool_event_t ev)
{
    if ((unsigned)slot->state > POOL_DEAD || (unsigned)ev > POOL_EV_EXIT ||
        next_state[slot->state][ev] < 0) {
        tlog_error("slot %zu (pid %d): illegal event %s in state %s", slot->index,
                   (int)slot->pid, pool_event_name(ev), pool_state_name(slot->state));
        return TASKQ_EINTERNAL;
    }
    pool_state_t to = (pool_state_t)next_state[slot->state][ev];
    tlog_debug("slot %zu (pid %d): %s -> %s on %s", slot->index, (int)slot->pid,
               pool_state_name(slot->state), pool_state_name(to), pool_event_name(ev));
    slot->state = to;
    /* a task belongs to a BUSY slot only; killing a busy child hands its
     * task back to the caller, which has already reported it */
    if (to != POOL_BUSY) {
        slot->has_task = false;
        slot->deadline_mono = 0;
    }
    if (ev == POOL_EV_SPAWN || ev == POOL_EV_EXIT) {
        slot->done = slot->failed = 0;
        slot->task_name[0] = '\0';
    }
    if (ev == POOL_EV_EXIT)
        slot->pid = 0;
    return TASKQ_OK;
}

taskq_err_t pool_spawn(pool_t *self, pool_slot_t *slot)
{
    if (slot->state != POOL_DEAD) {
        tlog_error("slot %zu: spawn in state %s", slot->index, pool_state_name(slot->state));
        return TASKQ_EINTERNAL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        tlog_error("socketpair: %s", strerror(errno));
        return TASKQ_ESYS;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        tlog_error("fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return TASKQ_ESYS;
    }
    if (pid == 0) {
        /* Child, before exec: async-signal-safe calls only. The parent may
         * hold ZeroMQ threads and locks; none of that may be touched here. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* parent died before prctl took effect */
            _exit(1);
        int fd = sv[1];
        if (fd != CHILD_FD) {
            if (dup2(fd, CHILD_FD) < 0) /* dup2 clears FD_CLOEXEC */
                _exit(127);
        } else if (fcntl(fd, F_SETFD, 0) < 0) {
            _exit(127);
        }
        if (close_range(CHILD_FD + 1, ~0U, 0) < 0)
            for (int i = CHILD_FD + 1; i < 65536; i++)
                close(i);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            sigaction(sig, &sa, NULL); /* fails harmlessly for KILL/STOP */
        execv(self->exe, self->argv);
        _exit(127);
    }
    close(sv[1]);
    int fl = fcntl(sv[0], F_GETFL);
    if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0)
        tlog_warn("fcntl O_NONBLOCK: %s", strerror(errno));
    pool_on(slot, POOL_EV_SPAWN);
    slot->pid = pid;
    slot->fd = sv[0];
    slot->spawned_mono = tclock_mono_ms();
    tlog_info("slot %zu: forked child %d", slot->index, (int)pid);
    return TASKQ_OK;
}

void pool_kill(pool_slot_t *slot, int sig)
{
    if (slot->pid > 0 && slot->state != POOL_DEAD && kill(slot->pid, sig) < 0 && errno != ESRCH)
        tlog_warn("kill(%d, %d): %s", (int)slot->pid, sig, strerror(errno));
}

void pool_describe_status(int status, char *buf, size_t bufsz)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(buf, bufsz, "killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
    } else if (WIFEXITED(status)) {
        snprintf(buf, bufsz, "exited with status %d", WEXITSTATUS(status));
    } else {
        snprintf(buf, bufsz, "ended with wait status 0x%x", (unsigned)status);
    }
}

size_t pool_reap(pool_t *self, pool_reap_fn fn, void *arg)
{
    size_t n = 0;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        n++;
        pool_slot_t *slot = pool_find_pid(self, pid);
        if (fn)
            fn(arg, slot, pid, status);
        if (slot && slot->state != POOL_DEAD) {
            pool_on(slot, POOL_EV_EXIT);
            slot->fd = -1; /* the owner of the fd (the caller's chan) closes it */
        }
    }
    return n;
}

uint64_t pool_rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096) / 1024;
}
