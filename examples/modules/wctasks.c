/*
 * wctasks.c - libwctasks.so, the task module of examples/mapreduce.c:
 *
 *   wc.count [[line, ...]]   -> the number of words (runs of non-blank
 *                               bytes) in the lines: the "map" step; a map
 *                               member gets its chunk of items this way
 *   wc.sum [..., [n, ...]]   -> the sum of the integers of its LAST argument:
 *                               the "reduce" step, as a chord callback (the
 *                               broker appends the members' results, in
 *                               member order, as the last argument)
 *
 * Build (done by the project's build: build/lib/libwctasks.so):
 *   cc -shared -fPIC wctasks.c -o libwctasks.so $(pkg-config --cflags msgpack-c) -I include
 * Run a worker with it:
 *   taskq-worker --module build/lib/libwctasks.so
 * Bad arguments fail permanently with code "wc.args" (retrying cannot help).
 */
#include <stdint.h>

#include "taskq_task.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static uint64_t words(const char *p, uint32_t n)
{
    uint64_t w = 0;
    int in = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (is_blank(p[i])) {
            in = 0;
        } else if (!in) {
            in = 1;
            w++;
        }
    }
    return w;
}

static int wc_count(taskq_ctx_t *ctx)
{
    const msgpack_object *a = taskq_args(ctx);
    /* [[line, ...]] from a map; [line, ...] when submitted by hand */
    if (a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 1 &&
        a->via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY)
        a = &a->via.array.ptr[0];
    if (a->type != MSGPACK_OBJECT_ARRAY)
        return taskq_fail_permanent(ctx, "wc.args", "wc.count: expected [[line, ...]]");
    uint64_t total = 0;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *s = &a->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR)
            return taskq_fail_permanent(ctx, "wc.args", "wc.count: item %u is not a string", i);
        total += words(s->via.str.ptr, s->via.str.size);
    }
    msgpack_pack_uint64(taskq_result_packer(ctx), total);
    return TASKQ_TASK_OK;
}

static int wc_sum(taskq_ctx_t *ctx)
{
    const msgpack_object *a = taskq_args(ctx);
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
        return taskq_fail_permanent(ctx, "wc.args", "wc.sum: expected [..., [n, ...]]");
    const msgpack_object *r = &a->via.array.ptr[a->via.array.size - 1];
    if (r->type != MSGPACK_OBJECT_ARRAY)
        return taskq_fail_permanent(ctx, "wc.args", "wc.sum: the last argument is not a list");
    uint64_t sum = 0;
    for (uint32_t i = 0; i < r->via.array.size; i++) {
        if (r->via.array.ptr[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return taskq_fail_permanent(ctx, "wc.args", "wc.sum: result %u is not a count", i);
        sum += r->via.array.ptr[i].via.u64;
    }
    msgpack_pack_uint64(taskq_result_packer(ctx), sum);
    return TASKQ_TASK_OK;
}

int taskq_module_init(taskq_registry_t *reg);

int taskq_module_init(taskq_registry_t *reg)
{
    if (taskq_register(reg, "wc.count", wc_count) != 0 || taskq_register(reg, "wc.sum", wc_sum) != 0)
        return -1;
    return 0;
}
