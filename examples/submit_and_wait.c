/*
 * submit_and_wait.c - the smallest taskq program: submit taskq.sumsq [1000],
 * wait for it, print the result.
 *   cc submit_and_wait.c $(pkg-config --cflags --libs taskq)
 * The broker is argv[1], else $TASKQ_BROKER, else tcp://127.0.0.1:5555.
 */
#include <stdio.h>
#include <stdint.h>

#include "taskq.h"

/* Prints a msgpack integer result (the only kind taskq.sumsq returns);
 * anything else is shown as hex. */
static void print_result(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    if (n == 1 && p[0] < 0x80) {
        printf("%u\n", p[0]);
        return;
    }
    if (n > 1 && p[0] >= 0xcc && p[0] <= 0xcf && n == 1 + (1u << (p[0] - 0xcc))) {
        for (size_t i = 1; i < n; i++)
            v = v << 8 | p[i];
        printf("%llu\n", (unsigned long long)v);
        return;
    }
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf(" (msgpack)\n");
}

int main(int argc, char **argv)
{
    taskq_err_t err;
    taskq_client_t *client = taskq_client_new(argc > 1 ? argv[1] : NULL, &err);
    if (!client) {
        fprintf(stderr, "taskq_client_new: %s\n", taskq_strerror(err));
        return 1;
    }
    /* args: the msgpack array [1000] */
    static const uint8_t args[] = {0x91, 0xcd, 0x03, 0xe8};
    taskq_task_spec_t spec = {.name = "taskq.sumsq", .args = args, .args_len = sizeof args};
    taskq_task_t *task = NULL;
    err = taskq_submit(client, &spec);
    if (err == TASKQ_OK)
        err = taskq_wait(client, &spec.id, 30000, &task);
    if (err != TASKQ_OK) {
        fprintf(stderr, "taskq: %s\n", taskq_strerror(err));
        taskq_client_destroy(&client);
        return 1;
    }
    int rc = 0;
    if (task->state == TASKQ_STATE_SUCCEEDED) {
        printf("sumsq(1000) = ");
        print_result(task->result, task->result_len);
    } else {
        fprintf(stderr, "task failed: %s\n", task->error);
        rc = 1;
    }
    taskq_task_destroy(&task);
    taskq_client_destroy(&client);
    return rc;
}
