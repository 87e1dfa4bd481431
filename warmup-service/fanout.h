/* fanout.h - the background fan-out of broadcast emails.
 *
 * /send stores an email with a snapshot of its recipients and answers at
 * once (store_create_email); this module's one thread then makes the
 * copies, one chunk of users per transaction (store_fanout_step), and
 * wakes the sender after each. It keeps at most 2 chunks of not-yet-sent
 * copies per email ahead of the sender, so the send queue holds the work
 * in progress, not every copy of a large broadcast. A paused email's
 * fan-out waits with its sending. fanout_stop ends the thread between two
 * chunks; the next start resumes each email at its stored cursor.
 * fanout_notify may be called from any thread.
 */
#ifndef FANOUT_H
#define FANOUT_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct sender;

struct fanout_config {
    struct store *store;
    struct sender *sender; /* notified after each chunk */
    int64_t chunk;         /* users per transaction (FANOUT_CHUNK) */
};

struct fanout;

/* fanout_start - the thread; NULL with errbuf set on failure */
struct fanout *fanout_start(const struct fanout_config *cfg, char *errbuf, size_t errlen);
/* fanout_notify - a broadcast was stored or resumed: look now */
void fanout_notify(struct fanout *f);
/* fanout_stop - end the thread after its current chunk and free f */
void fanout_stop(struct fanout *f);

#endif
