/* flow.c - workflow graph planning and map chunking (see flow.h). Pure. */
#include "flow.h"

#include <stdlib.h>
#include <string.h>

#include "proto.h"

static taskq_err_t refuse(const char **why, const char *text)
{
    if (why)
        *why = text;
    return TASKQ_EINVAL;
}

int flow_on_fail(const char *word)
{
    if (!word || !word[0] || !strcmp(word, "fail"))
        return 0;
    return !strcmp(word, "settle") ? 1 : -1;
}

/* The structural checks: ranges, group sizes and member indexes, callback
 * links. member_start / member_used are scratch arrays (ng + 1 and n). */
static taskq_err_t check_links(const flow_node_t *nodes, size_t n, const flow_group_t *groups,
                               size_t ng, size_t *count, const char **why)
{
    for (size_t g = 0; g < ng; g++) {
        count[g] = 0;
        if (groups[g].on_fail != 0 && groups[g].on_fail != 1)
            return refuse(why, "a group's on_fail is neither fail nor settle");
        int32_t cb = groups[g].callback;
        if (cb >= 0 && ((size_t)cb >= n || nodes[cb].callback_of != (int32_t)g))
            return refuse(why, "a group's callback does not name it back");
        if (cb < -1)
            return refuse(why, "a group's callback index is out of range");
    }
    for (size_t i = 0; i < n; i++) {
        const flow_node_t *d = &nodes[i];
        if (d->parent < -1 || (d->parent >= 0 && (size_t)d->parent >= n))
            return refuse(why, "a parent index is out of range");
        if (d->parent == (int32_t)i)
            return refuse(why, "a task cannot wait for itself");
        if (d->group < -1 || (d->group >= 0 && (size_t)d->group >= ng))
            return refuse(why, "a group index is out of range");
        if (d->callback_of < -1 || (d->callback_of >= 0 && (size_t)d->callback_of >= ng))
            return refuse(why, "a callback's group index is out of range");
        if (d->group >= 0 && d->callback_of >= 0)
            return refuse(why, "a task cannot be both a group member and a chord callback");
        if (d->callback_of >= 0 && groups[d->callback_of].callback != (int32_t)i)
            return refuse(why, "a group has more than one callback, or does not name it");
        if (d->group >= 0)
            count[d->group]++;
    }
    for (size_t g = 0; g < ng; g++)
        if (count[g] != groups[g].size)
            return refuse(why, "a group's size differs from its number of members");
    return TASKQ_OK;
}

/* Member indexes of every group are 0..size-1, each once. */
static taskq_err_t check_indexes(const flow_node_t *nodes, size_t n, const flow_group_t *groups,
                                 size_t ng, const char **why)
{
    /* sizes were checked against the members: their sum is at most n */
    size_t *start = malloc((ng + 1) * sizeof *start);
    uint8_t *used = calloc(n ? n : 1, 1);
    taskq_err_t e = TASKQ_OK;
    if (!start || !used) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    start[0] = 0;
    for (size_t g = 0; g < ng; g++)
        start[g + 1] = start[g] + groups[g].size;
    for (size_t i = 0; i < n && e == TASKQ_OK; i++) {
        int32_t g = nodes[i].group;
        if (g < 0)
            continue;
        if (nodes[i].index >= groups[g].size) {
            e = refuse(why, "a member index is not below its group's size");
        } else if (used[start[g] + nodes[i].index]) {
            e = refuse(why, "two members of a group have the same index");
        } else {
            used[start[g] + nodes[i].index] = 1;
        }
    }
out:
    free(start);
    free(used);
    return e;
}

taskq_err_t flow_plan(const flow_node_t *nodes, size_t n, const flow_group_t *groups, size_t ng,
                      size_t *order, const char **why)
{
    if (why)
        *why = NULL;
    if (n > TQ_GRAPH_MAX) {
        if (why)
            *why = "too many tasks in one workflow";
        return TASKQ_ETOOBIG;
    }
    if (ng > TQ_GROUPS_MAX) {
        if (why)
            *why = "too many groups in one workflow";
        return TASKQ_ETOOBIG;
    }
    if ((n && !nodes) || (ng && !groups) || !order)
        return refuse(why, "NULL argument");
    size_t *count = malloc((ng ? ng : 1) * sizeof *count);
    if (!count)
        return TASKQ_ENOMEM;
    taskq_err_t e = check_links(nodes, n, groups, ng, count, why);
    free(count);
    if (e == TASKQ_OK)
        e = check_indexes(nodes, n, groups, ng, why);
    if (e != TASKQ_OK)
        return e;
    /* Kahn's algorithm over the edges parent -> child and member ->
     * callback, with a FIFO seeded in index order: a graph already in a
     * good order keeps it. children: CSR lists of the nodes naming each
     * node as their parent. */
    uint32_t *indeg = calloc(n ? n : 1, sizeof *indeg);
    size_t *cstart = calloc(n + 1, sizeof *cstart);
    size_t *clist = malloc((n ? n : 1) * sizeof *clist);
    size_t *fill = calloc(n ? n : 1, sizeof *fill);
    if (!indeg || !cstart || !clist || !fill) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].parent >= 0) {
            indeg[i]++;
            cstart[nodes[i].parent + 1]++;
        }
        if (nodes[i].callback_of >= 0)
            indeg[i] += groups[nodes[i].callback_of].size;
    }
    for (size_t i = 0; i < n; i++)
        cstart[i + 1] += cstart[i];
    for (size_t i = 0; i < n; i++) {
        int32_t p = nodes[i].parent;
        if (p >= 0)
            clist[cstart[p] + fill[p]++] = i;
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        size_t v = order[head++];
        for (size_t k = cstart[v]; k < cstart[v + 1]; k++)
            if (--indeg[clist[k]] == 0)
                order[tail++] = clist[k];
        int32_t g = nodes[v].group;
        if (g >= 0 && groups[g].callback >= 0 && --indeg[groups[g].callback] == 0)
            order[tail++] = (size_t)groups[g].callback;
    }
    if (tail != n)
        e = refuse(why, "the workflow has a cycle (through parents and chord callbacks)");
out:
    free(indeg);
    free(cstart);
    free(clist);
    free(fill);
    return e;
}

/* ---- map ---------------------------------------------------------------- */

/* A big-endian unsigned of w bytes at p[*off]; false if truncated. */
static bool be(const uint8_t *p, size_t len, size_t *off, int w, uint64_t *out)
{
    if (len - *off < (size_t)w)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | p[(*off)++];
    *out = v;
    return true;
}

/* Bytes of the one msgpack value at p (len available), iteratively; 0 if
 * it is truncated or malformed. */
static size_t mp_skip(const uint8_t *p, size_t len)
{
    size_t off = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (off >= len || pending > len - off)
            return 0;
        uint8_t b = p[off++];
        pending--;
        uint64_t body = 0, items = 0;
        int w = 0;   /* width of a length / count field */
        int extra = 0; /* fixed bytes after it (ext type) */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b <= 0x8f) {
            items = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            items = b & 0x0f;
        } else if (b <= 0xbf) {
            body = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: case 0xd9: w = 1; break;
            case 0xc5: case 0xda: w = 2; break;
            case 0xc6: case 0xdb: w = 4; break;
            case 0xc7: w = 1; extra = 1; break;
            case 0xc8: w = 2; extra = 1; break;
            case 0xc9: w = 4; extra = 1; break;
            case 0xca: body = 4; break;
            case 0xcb: body = 8; break;
            case 0xcc: case 0xd0: body = 1; break;
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xdc: case 0xde: {
                uint64_t c;
                if (!be(p, len, &off, 2, &c))
                    return 0;
                items = b == 0xde ? 2 * c : c;
                break;
            }
            case 0xdd: case 0xdf: {
                uint64_t c;
                if (!be(p, len, &off, 4, &c))
                    return 0;
                items = b == 0xdf ? 2 * c : c;
                break;
            }
            default: return 0; /* 0xc1 */
            }
        }
        if (w > 0 && !be(p, len, &off, w, &body))
            return 0;
        body += (uint64_t)extra;
        if (body > len - off)
            return 0;
        off += (size_t)body;
        pending += items;
    }
    return off;
}

taskq_err_t flow_map_args(const void *items, size_t len, size_t chunk, uint8_t **buf,
                          size_t **off, size_t *nchunks)
{
    *buf = NULL;
    *off = NULL;
    *nchunks = 0;
    if (!items || len == 0)
        return TASKQ_EINVAL;
    /* each item ends up one level deeper: [[item, ...]] */
    taskq_err_t e = proto_precheck(items, len, TQ_MAX_DEPTH - 1);
    if (e != TASKQ_OK)
        return e == TASKQ_ETOOBIG ? e : TASKQ_EINVAL;
    const uint8_t *p = items;
    size_t pos = 0;
    uint64_t count;
    if (p[0] >= 0x90 && p[0] <= 0x9f) {
        count = p[0] & 0x0f;
        pos = 1;
    } else if (p[0] == 0xdc || p[0] == 0xdd) {
        pos = 1;
        if (!be(p, len, &pos, p[0] == 0xdc ? 2 : 4, &count))
            return TASKQ_EINVAL;
    } else {
        return TASKQ_EINVAL; /* not an array */
    }
    if (chunk == 0)
        chunk = 1;
    uint64_t nch = count / chunk + (count % chunk != 0);
    if (nch > TQ_GRAPH_MAX - 1)
        return TASKQ_ETOOBIG;
    size_t cap = len + 6 * (size_t)nch + 1;
    uint8_t *b = malloc(cap);
    size_t *o = malloc(((size_t)nch + 1) * sizeof *o);
    if (!b || !o) {
        free(b);
        free(o);
        return TASKQ_ENOMEM;
    }
    size_t w = 0;
    uint64_t done = 0;
    for (uint64_t c = 0; c < nch; c++) {
        uint64_t k = count - done < chunk ? count - done : chunk;
        size_t span_start = pos;
        for (uint64_t i = 0; i < k; i++) {
            size_t s = mp_skip(p + pos, len - pos);
            if (s == 0) {
                e = TASKQ_EINVAL;
                goto fail;
            }
            pos += s;
        }
        size_t span = pos - span_start;
        o[c] = w;
        b[w++] = 0x91;
        if (k <= 15) {
            b[w++] = (uint8_t)(0x90 | k);
        } else if (k <= 0xffff) {
            b[w++] = 0xdc;
            b[w++] = (uint8_t)(k >> 8);
            b[w++] = (uint8_t)k;
        } else {
            b[w++] = 0xdd;
            for (int sh = 24; sh >= 0; sh -= 8)
                b[w++] = (uint8_t)(k >> sh);
        }
        memcpy(b + w, p + span_start, span);
        w += span;
        if (w - o[c] > TQ_ARGS_MAX) {
            e = TASKQ_ETOOBIG;
            goto fail;
        }
        done += k;
    }
    if (pos != len) { /* precheck saw one value: cannot happen */
        e = TASKQ_EINVAL;
        goto fail;
    }
    o[nch] = w;
    *buf = b;
    *off = o;
    *nchunks = (size_t)nch;
    return TASKQ_OK;
fail:
    free(b);
    free(o);
    return e;
}
