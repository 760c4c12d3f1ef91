/* tq-check DIR DB - checks a history directory (TASKQ_HISTORY) against the
 * broker's final database; prints the summary and the violations.
 * Exit 0: no violation; 1: violations; 2: usage or I/O error. */
#include <stdio.h>

#include "checker.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tq-check HISTORY_DIR DB\n");
        return 2;
    }
    checker_t *c = checker_new();
    if (!c)
        return 2;
    if (checker_load_dir(c, argv[1]) != TASKQ_OK || checker_load_db(c, argv[2]) != TASKQ_OK) {
        checker_destroy(&c);
        return 2;
    }
    int n = checker_run(c, stdout, NULL);
    checker_destroy(&c);
    return n == 0 ? 0 : 1;
}
