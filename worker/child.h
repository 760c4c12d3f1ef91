/*
 * child.h - the main of a worker child process (`taskq-worker --child FD`).
 * The child is a fresh process image (fork + exec): it never calls ZeroMQ.
 * It loads the built-in tasks and the --module libraries, sends READY, then
 * reads TASK frames from fd and answers each with PROGRESS frames and one
 * DONE, one task at a time. STOP (the poison pill) or EOF ends it. A CANCEL
 * for the running task is read when the task calls taskq_cancelled(); a
 * SIGTERM from the supervisor (revoke --terminate) kills it, one from
 * anyone else is ignored.
 */
#ifndef TASKQ_CHILD_H
#define TASKQ_CHILD_H

#include <stddef.h>

/* Never returns: _exit(0) after STOP/EOF, _exit(2) if a module fails to
 * load or the supervisor is already gone, _exit(3) on a broken channel. */
void child_main(int fd, const char *const *modules, size_t nmodules) __attribute__((noreturn));

#endif
