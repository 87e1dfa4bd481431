/* sender.h - the sending pipeline: dispatcher, workers and writer.
 *
 * Threads (started by sender_start, joined by sender_stop):
 *  - the dispatcher claims due copies of active emails from the store in
 *    batches with a lease, paced by a token bucket per SmtpClient and per
 *    email, and pushes them into that client's bounded queue;
 *  - per SmtpClient, `connections` workers each own one SMTP session, pop
 *    small batches, compose each copy (MIME) and send the batch over the
 *    reused connection;
 *  - one writer commits the outcomes in batches together with the
 *    email.sent / email.failed events (outbox).
 * Memory is bounded by the queue sizes whatever the number of recipients.
 * sender_notify/sender_email_changed/stats may be called from any thread.
 */
#ifndef SENDER_H
#define SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct smtp_clients;
struct metrics;
struct outbox_publisher;

struct sender_config {
    struct store *store;
    const struct smtp_clients *clients;
    struct metrics *metrics;
    struct outbox_publisher *outbox;
    const char *email_topic;
    int retry_max;     /* retries after the first attempt before dead-lettering */
    int retry_base_ms; /* first retry delay; doubles per attempt, with jitter */
    int64_t lease_ms;  /* how long a claimed copy stays leased */
    int batch;         /* copies per SMTP send call (per connection) */
};

struct sender;

struct sender *sender_start(const struct sender_config *cfg, char *errbuf, size_t errlen);
/* sender_notify - new copies were committed (send, backfill, resume) */
void sender_notify(struct sender *s);
/* sender_email_changed - paused or tpm of an email changed in the store */
void sender_email_changed(struct sender *s, int64_t email_id);
/* sender_stop - stop claiming, finish the copies being sent, release the
 * queued ones back to the store, commit every outcome, join, free */
void sender_stop(struct sender *s);

/* sender_smtp_ok - false when the last attempt of any client failed to
 * reach its server (connection, TLS or timeout), for /readyz */
bool sender_smtp_ok(struct sender *s, char *why, size_t len);

#endif
