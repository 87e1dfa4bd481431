/* loop_slot.h - a feedback-loop instance as the scheduler runs it: the
 * loop, and the scheduler's bookkeeping of it. A slot is embedded in what
 * owns the instance (a seed mailbox, seeds.h; a domain's instance,
 * scheduler.c); the bookkeeping fields are read and written under the
 * scheduler's lock only, and the loop is used only by the thread that set
 * running or closing (never both at once). */
#ifndef LOOP_SLOT_H
#define LOOP_SLOT_H

#include "loops/feedback_loop.h"

#include <stdbool.h>
#include <stdint.h>

struct loop_slot {
    const struct feedback_loop_ops *ops; /* NULL: no instance (a bad entry) */
    void *loop;                          /* owned by the slot's owner */
    bool busy;                           /* a task for it is queued or running */
    bool running;                        /* a worker runs its task (check) now */
    bool closing;                        /* a worker closes it for the budget now */
    bool connected;                      /* holds a connection, or may open one now */
    bool failing;                        /* its last round could not check */
    int64_t used_ms;                     /* its last use (monotonic), for eviction */
};

#endif
