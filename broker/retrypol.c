/* retrypol.c - placeholder; see retrypol.h (being written). */
#include "retrypol.h"
