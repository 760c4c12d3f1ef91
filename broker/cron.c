/* cron.c - placeholder; see cron.h (being written). */
#include "cron.h"
