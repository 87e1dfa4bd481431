/* feedback_loop.h - the FeedbackLoop plugin interface.
 *
 * A feedback loop answers, for copies sent to one recipient domain, where
 * each copy landed (inbox or spam), whether it was opened (\Seen) and read
 * (\Seen with \Answered or \Flagged). A loop type is a const struct
 * feedback_loop_ops in its own file under health-service/loops/
 * (loop_mock.c, loop_imap.c) plus one line in the registry (loops.c).
 * A loop instance serves one domain and is used by ONE scheduler worker
 * thread at a time; it may keep state (an IMAP connection) across rounds.
 * Settings come from the domain's FEEDBACK_LOOPS_FILE entry (a json-c
 * object, borrowed for the duration of new()).
 */
#ifndef FEEDBACK_LOOP_H
#define FEEDBACK_LOOP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fl_placement {
    FL_UNKNOWN = 0, /* could not be checked this round */
    FL_NOT_FOUND,   /* checked, not (yet) in any watched folder */
    FL_INBOX,       /* delivered to the inbox */
    FL_SPAM,        /* delivered to the spam folder */
    FL_UNCHECKED,   /* no loop looks at it: neither a seed mailbox nor a domain
                     * loop (set by the scheduler, never by a loop; final) */
};

/* one tracked copy asked about in a round; the loop fills the results */
struct fl_copy {
    const char *message_id; /* "<email-1.9f2c...@d.com>" with the brackets */
    const char *recipient;  /* the seed mailbox address it was sent to */
    int64_t sent_at_ms;
    int rounds; /* how many earlier rounds checked it (0: first time) */
    /* results */
    enum fl_placement placement;
    bool opened;
    bool read;
    bool rescued; /* moved from the spam folder to the inbox by this round
                   * (engage.rescue); its placement stays FL_SPAM */
};

struct feedback_loop_ops {
    const char *name; /* "mock", "imap": the "loop" value in FEEDBACK_LOOPS_FILE */
    /* create - a loop for domain from its settings (may be NULL); NULL with
     * a message naming the bad setting (never a password) */
    void *(*create)(const char *domain, json_object *settings, char *errbuf, size_t errlen);
    /* check - one round over n copies: fill placement/opened/read of each.
     * 0 when the round ran (copies it could not check stay FL_UNKNOWN);
     * -1 when the loop could not check anything this round (mailbox down):
     * every copy FL_UNKNOWN, reason in errbuf. Bounded in time by the
     * loop's own timeouts. */
    int (*check)(void *loop, struct fl_copy *copies, size_t n, char *errbuf, size_t errlen);
    /* destroy - close and free; NULL is a no-op */
    void (*destroy)(void *loop);
    /* connected - the loop holds an open connection now. Optional (NULL:
     * it never holds one). Called by the thread that may use the loop. */
    bool (*connected)(void *loop);
    /* idle_close - close the loop's connection, keeping everything else
     * (a later check reconnects and carries on where it stopped).
     * Optional. The scheduler bounds open connections with it. */
    void (*idle_close)(void *loop);
};

extern const struct feedback_loop_ops loop_mock_ops;
extern const struct feedback_loop_ops loop_imap_ops;

/* loop_imap_commands - IMAP commands sent by every IMAP loop instance
 * since start (any thread; health_imap_commands_total) */
uint64_t loop_imap_commands(void);

/* feedback_loop_find - the ops named name, NULL when unknown */
const struct feedback_loop_ops *feedback_loop_find(const char *name);

#endif
