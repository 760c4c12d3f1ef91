/* errors.c - taskq_strerror, error symbols and state names: one table each. */
#include "taskq.h"

#include <string.h>

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
    [TASKQ_EEXIST] = {"EEXIST", "already exists"},
    [TASKQ_ENOQUEUE] = {"ENOQUEUE", "unknown queue"},
    [TASKQ_EPURGED] = {"EPURGED", "task record purged after its retention time"},
    [TASKQ_ETERMINAL] = {"ETERMINAL", "task already terminal"},
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

/* Indexed by taskq_state_t: the wire names (docs/protocol.md). */
static const char *const states[TASKQ_NSTATES] = {
    [TASKQ_STATE_QUEUED] = "queued",       [TASKQ_STATE_RUNNING] = "running",
    [TASKQ_STATE_SUCCEEDED] = "succeeded", [TASKQ_STATE_FAILED] = "failed",
    [TASKQ_STATE_SCHEDULED] = "scheduled", [TASKQ_STATE_RETRYING] = "retrying",
    [TASKQ_STATE_REVOKED] = "revoked",     [TASKQ_STATE_EXPIRED] = "expired",
    [TASKQ_STATE_PENDING] = "pending",
};

const char *taskq_state_name(int state)
{
    if (state < 0 || state >= TASKQ_NSTATES || !states[state])
        return "unknown";
    return states[state];
}

int taskq_state_is_terminal(int state)
{
    return state == TASKQ_STATE_SUCCEEDED || state == TASKQ_STATE_FAILED ||
           state == TASKQ_STATE_REVOKED || state == TASKQ_STATE_EXPIRED;
}

int taskq_state_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int s = 0; s < TASKQ_NSTATES; s++)
        if (states[s] && strcmp(states[s], name) == 0)
            return s;
    return -1;
}
