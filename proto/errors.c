/* errors.c - taskq_strerror, error symbols and state names: one table each. */
#include "taskq.h"

static const struct {
    const char *name;
    const char *text;
} errs[] = {
    [TASKQ_OK] = {"OK", "success"},
    [TASKQ_EINVAL] = {"EINVAL", "invalid argument"},
    [TASKQ_ENOMEM] = {"ENOMEM", "out of memory"},
    [TASKQ_ETIMEDOUT] = {"ETIMEDOUT", "timed out"},
    [TASKQ_EPROTO] = {"EPROTO", "malformed message"},
    [TASKQ_EVERSION] = {"EVERSION", "unsupported protocol version"},
    [TASKQ_ETOOBIG] = {"ETOOBIG", "message or field exceeds a limit"},
    [TASKQ_ENOTFOUND] = {"ENOTFOUND", "no such task"},
    [TASKQ_ESTALE] = {"ESTALE", "stale attempt: the lease is no longer current"},
    [TASKQ_EBUSY] = {"EBUSY", "broker busy, try again later"},
    [TASKQ_ECLOSED] = {"ECLOSED", "shutting down"},
    [TASKQ_ESTORE] = {"ESTORE", "storage error: nothing was acknowledged"},
    [TASKQ_ESYS] = {"ESYS", "system call failed"},
    [TASKQ_EINTERNAL] = {"EINTERNAL", "internal error"},
    [TASKQ_EUNREACH] = {"EUNREACH", "cannot reach the broker"},
    [TASKQ_ENAME] = {"ENAME", "invalid name"},
    [TASKQ_EUNKNOWN] = {"EUNKNOWN", "unknown message type"},
};

#define NERRS (int)(sizeof errs / sizeof errs[0])

const char *taskq_strerror(int err)
{
    if (err < 0 || err >= NERRS || !errs[err].text)
        return "unknown error";
    return errs[err].text;
}

const char *taskq_err_name(int err)
{
    if (err < 0 || err >= NERRS || !errs[err].name)
        return "EUNKNOWNCODE";
    return errs[err].name;
}

const char *taskq_state_name(int state)
{
    switch (state) {
    case TASKQ_STATE_QUEUED: return "queued";
    case TASKQ_STATE_RUNNING: return "running";
    case TASKQ_STATE_SUCCEEDED: return "succeeded";
    case TASKQ_STATE_FAILED: return "failed";
    default: return "unknown";
    }
}

int taskq_state_is_terminal(int state)
{
    return state == TASKQ_STATE_SUCCEEDED || state == TASKQ_STATE_FAILED;
}
