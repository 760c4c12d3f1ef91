/* faultvfs.c - the fault-injection VFS; see faultvfs.h. Test-only: built
 * with TASKQ_FAULTS, inert unless $TASKQ_FAULT_VFS is set.
 *
 * Every method delegates to the wrapped "unix" file; only xWrite, xTruncate
 * and xSync look at the faults. The broker has one thread and one
 * connection, so the global state needs no lock. */
#include "faultvfs.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlog.h"

#define VFS_NAME "taskq-fault"

enum { LOSS_RANDOM, LOSS_DROP, LOSS_KEEP };

/* One write (or shrinking truncate) since the file's last sync. old[] holds
 * the bytes [off, off + nold) as they were before; old_size the file size. */
typedef struct undo {
    struct undo *next; /* older */
    sqlite3_int64 off, old_size;
    int len, nold;
    unsigned char old[];
} undo_t;

typedef struct ffile {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same allocation */
    struct ffile *prev, *next;
    undo_t *undo; /* newest first */
    char name[64];
} ffile_t;

static struct {
    bool installed;
    sqlite3_vfs vfs;
    sqlite3_vfs *real;
    long crash_sync; /* 0 = off */
    uint64_t rng;
    int loss;
    char full_file[PATH_MAX], eio_file[PATH_MAX];
    long syncs;
    ffile_t *files;
} g;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from the seed */
    g.rng ^= g.rng >> 12;
    g.rng ^= g.rng << 25;
    g.rng ^= g.rng >> 27;
    return g.rng * 2685821657736338717ULL;
}

static bool flag_file(const char *path)
{
    return path[0] && access(path, F_OK) == 0;
}

static void undo_free(ffile_t *f)
{
    while (f->undo) {
        undo_t *u = f->undo;
        f->undo = u->next;
        free(u);
    }
}

/* Records what [off, off+len) held before it is overwritten or cut off. */
static int undo_push(ffile_t *f, sqlite3_int64 off, int len)
{
    sqlite3_int64 size = 0;
    int rc = f->real->pMethods->xFileSize(f->real, &size);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_int64 nold = size - off;
    nold = nold < 0 ? 0 : nold > len ? len : nold;
    undo_t *u = malloc(sizeof *u + (size_t)nold);
    if (!u)
        return SQLITE_NOMEM;
    u->off = off;
    u->len = len;
    u->nold = (int)nold;
    u->old_size = size;
    if (nold > 0) {
        rc = f->real->pMethods->xRead(f->real, u->old, (int)nold, off);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
            free(u);
            return rc;
        }
    }
    u->next = f->undo;
    f->undo = u;
    return SQLITE_OK;
}

/* The simulated power loss: the fate of every unsynced write, then exit. */
static void crash(void)
{
    long kept = 0, dropped = 0, garbled = 0;
    for (ffile_t *f = g.files; f; f = f->next) {
        const sqlite3_io_methods *m = f->real->pMethods;
        sqlite3_int64 synced = -1, keep_end = 0, size = 0;
        bool any_drop = false;
        for (undo_t *u = f->undo; u; u = u->next) {
            int fate = g.loss == LOSS_DROP ? 0 : g.loss == LOSS_KEEP ? 1 : (int)(rnd() % 3);
            synced = u->old_size; /* the oldest record's: the size at the last sync */
            if (fate == 1) {
                kept++;
                if (u->off + u->len > keep_end)
                    keep_end = u->off + u->len;
            } else if (fate == 2) {
                garbled++;
                unsigned char *junk = malloc((size_t)u->len);
                if (junk) {
                    for (int i = 0; i < u->len; i++)
                        junk[i] = (unsigned char)rnd();
                    m->xWrite(f->real, junk, u->len, u->off);
                    free(junk);
                }
                if (u->off + u->len > keep_end)
                    keep_end = u->off + u->len;
            } else {
                dropped++;
                any_drop = true;
                if (u->nold > 0)
                    m->xWrite(f->real, u->old, u->nold, u->off);
                if (u->len > u->nold) { /* beyond the old end: never written */
                    unsigned char *zero = calloc(1, (size_t)(u->len - u->nold));
                    if (zero) {
                        m->xWrite(f->real, zero, u->len - u->nold, u->off + u->nold);
                        free(zero);
                    }
                }
            }
        }
        if (any_drop && m->xFileSize(f->real, &size) == SQLITE_OK) {
            sqlite3_int64 end = synced > keep_end ? synced : keep_end;
            if (end < size)
                m->xTruncate(f->real, end);
        }
    }
    char line[256];
    int n = snprintf(line, sizeof line,
                     "faultvfs: simulated power loss at sync %ld: %ld unsynced writes kept, "
                     "%ld dropped, %ld garbled; exit 99\n",
                     g.syncs, kept, dropped, garbled);
    if (n > 0 && write(2, line, (size_t)n) < 0) {
        /* nothing to do: we are about to die */
    }
    _exit(99);
}

/* ---- io methods ---------------------------------------------------------- */

static int f_close(sqlite3_file *p)
{
    ffile_t *f = (ffile_t *)p;
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    undo_free(f);
    if (f->prev)
        f->prev->next = f->next;
    else if (g.files == f)
        g.files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    return rc;
}

static int f_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int f_write(sqlite3_file *p, const void *buf, int amt, sqlite3_int64 off)
{
    ffile_t *f = (ffile_t *)p;
    if (flag_file(g.eio_file))
        return SQLITE_IOERR_WRITE;
    if (g.full_file[0] && flag_file(g.full_file)) {
        sqlite3_int64 size = 0;
        int rc = f->real->pMethods->xFileSize(f->real, &size);
        if (rc != SQLITE_OK)
            return rc;
        if (off + amt > size)
            return SQLITE_FULL;
    }
    if (g.crash_sync) {
        int rc = undo_push(f, off, amt);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    ffile_t *f = (ffile_t *)p;
    sqlite3_int64 cur = 0;
    int rc = f->real->pMethods->xFileSize(f->real, &cur);
    if (rc != SQLITE_OK)
        return rc;
    if (size > cur && flag_file(g.full_file))
        return SQLITE_FULL;
    if (g.crash_sync && size < cur && cur - size <= INT_MAX) {
        rc = undo_push(f, size, (int)(cur - size));
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *p, int flags)
{
    ffile_t *f = (ffile_t *)p;
    g.syncs++;
    if (g.crash_sync && g.syncs == g.crash_sync)
        crash();
    int rc = f->real->pMethods->xSync(f->real, flags);
    if (rc == SQLITE_OK)
        undo_free(f); /* synced: durable */
    return rc;
}

static int f_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int f_lock(sqlite3_file *p, int lock)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xLock(f->real, lock);
}

static int f_unlock(sqlite3_file *p, int lock)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int f_check_reserved(sqlite3_file *p, int *out)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int f_file_control(sqlite3_file *p, int op, void *arg)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int f_sector_size(sqlite3_file *p)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int f_device_chars(sqlite3_file *p)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int f_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

static int f_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *p)
{
    ffile_t *f = (ffile_t *)p;
    f->real->pMethods->xShmBarrier(f->real);
}

static int f_shm_unmap(sqlite3_file *p, int del)
{
    ffile_t *f = (ffile_t *)p;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

/* Memory-mapped I/O would bypass xRead; refuse it so reads see our writes. */
static int f_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
    (void)p;
    (void)off;
    (void)amt;
    *out = NULL;
    return SQLITE_OK;
}

static int f_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
    (void)p;
    (void)off;
    (void)ptr;
    return SQLITE_OK;
}

static const sqlite3_io_methods METHODS = {
    3,           f_close,       f_read,         f_write,        f_truncate,
    f_sync,      f_file_size,   f_lock,         f_unlock,       f_check_reserved,
    f_file_control, f_sector_size, f_device_chars, f_shm_map,   f_shm_lock,
    f_shm_barrier, f_shm_unmap, f_fetch,        f_unfetch,
};

/* ---- vfs ------------------------------------------------------------------- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
    (void)vfs;
    ffile_t *f = (ffile_t *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = g.real->xOpen(g.real, name, f->real, flags, out_flags);
    if (!f->real->pMethods)
        return rc; /* p->pMethods stays NULL: SQLite will not call xClose */
    if (f->real->pMethods->iVersion < 3) {
        f->real->pMethods->xClose(f->real);
        return SQLITE_CANTOPEN;
    }
    snprintf(f->name, sizeof f->name, "%s", name ? name : "(temp)");
    f->base.pMethods = &METHODS;
    f->next = g.files;
    if (g.files)
        g.files->prev = f;
    g.files = f;
    return rc;
}

#define FWD(ret, fn, params, args)                                                               \
    static ret v_##fn params { (void)vfs; return g.real->x##fn args; }

FWD(int, Delete, (sqlite3_vfs * vfs, const char *n, int sync), (g.real, n, sync))
FWD(int, Access, (sqlite3_vfs * vfs, const char *n, int fl, int *out), (g.real, n, fl, out))
FWD(int, FullPathname, (sqlite3_vfs * vfs, const char *n, int sz, char *out),
    (g.real, n, sz, out))
FWD(void *, DlOpen, (sqlite3_vfs * vfs, const char *n), (g.real, n))
FWD(int, Randomness, (sqlite3_vfs * vfs, int n, char *out), (g.real, n, out))
FWD(int, Sleep, (sqlite3_vfs * vfs, int us), (g.real, us))
FWD(int, CurrentTime, (sqlite3_vfs * vfs, double *out), (g.real, out))
FWD(int, GetLastError, (sqlite3_vfs * vfs, int n, char *out), (g.real, n, out))
FWD(int, CurrentTimeInt64, (sqlite3_vfs * vfs, sqlite3_int64 *out), (g.real, out))

static void v_DlError(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    g.real->xDlError(g.real, n, out);
}

static void (*v_DlSym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return g.real->xDlSym(g.real, h, sym);
}

static void v_DlClose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    g.real->xDlClose(g.real, h);
}

static bool parse(const char *spec)
{
    char buf[2 * PATH_MAX];
    snprintf(buf, sizeof buf, "%s", spec);
    g.loss = LOSS_RANDOM;
    g.rng = 0x9e3779b97f4a7c15ULL;
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return false;
        *eq = '\0';
        const char *v = eq + 1;
        char *end = NULL;
        if (!strcmp(kv, "crash_sync")) {
            g.crash_sync = strtol(v, &end, 10);
            if (*end || g.crash_sync < 1)
                return false;
        } else if (!strcmp(kv, "seed")) {
            g.rng = strtoull(v, &end, 10) * 2654435761ULL + 0x9e3779b97f4a7c15ULL;
            if (*end)
                return false;
        } else if (!strcmp(kv, "loss")) {
            if (!strcmp(v, "random"))
                g.loss = LOSS_RANDOM;
            else if (!strcmp(v, "drop"))
                g.loss = LOSS_DROP;
            else if (!strcmp(v, "keep"))
                g.loss = LOSS_KEEP;
            else
                return false;
        } else if (!strcmp(kv, "full_file")) {
            snprintf(g.full_file, sizeof g.full_file, "%s", v);
        } else if (!strcmp(kv, "eio_file")) {
            snprintf(g.eio_file, sizeof g.eio_file, "%s", v);
        } else {
            return false;
        }
    }
    if (!g.rng)
        g.rng = 1; /* xorshift must not start at 0 */
    return true;
}

const char *faultvfs_install(void)
{
    if (g.installed)
        return VFS_NAME;
    const char *spec = getenv("TASKQ_FAULT_VFS");
    if (!spec || !*spec)
        return NULL;
    if (!parse(spec)) {
        tlog_error("TASKQ_FAULT_VFS='%s': expected crash_sync=N,seed=S,loss=random|drop|keep, "
                   "full_file=PATH or eio_file=PATH; ignored",
                   spec);
        memset(&g, 0, sizeof g);
        return NULL;
    }
    g.real = sqlite3_vfs_find("unix");
    if (!g.real) {
        tlog_error("faultvfs: no \"unix\" VFS to wrap");
        return NULL;
    }
    sqlite3_vfs *v = &g.vfs;
    v->iVersion = 2;
    v->szOsFile = (int)sizeof(ffile_t) + g.real->szOsFile;
    v->mxPathname = g.real->mxPathname;
    v->zName = VFS_NAME;
    v->xOpen = v_open;
    v->xDelete = v_Delete;
    v->xAccess = v_Access;
    v->xFullPathname = v_FullPathname;
    v->xDlOpen = v_DlOpen;
    v->xDlError = v_DlError;
    v->xDlSym = v_DlSym;
    v->xDlClose = v_DlClose;
    v->xRandomness = v_Randomness;
    v->xSleep = v_Sleep;
    v->xCurrentTime = v_CurrentTime;
    v->xGetLastError = v_GetLastError;
    v->xCurrentTimeInt64 = v_CurrentTimeInt64;
    int rc = sqlite3_vfs_register(v, 0);
    if (rc != SQLITE_OK) {
        tlog_error("faultvfs: register: %s", sqlite3_errstr(rc));
        return NULL;
    }
    g.installed = true;
    tlog_warn("faultvfs: TEST FAULTS ACTIVE: %s", spec);
    return VFS_NAME;
}
