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
 * Per SmtpClient a circuit breaker (smtp/smtp_breaker.h) stops the
 * sending after a timeout or a failed connect: the dispatcher claims
 * nothing for that client, the copies already claimed are released at
 * once without being charged an attempt, and one worker probes the
 * server after the backoff; the copy in flight when the server stopped
 * answering is charged one attempt (so each outage charges at most one
 * copy per connection).
 * Memory is bounded by the queue sizes whatever the number of recipients.
 * sender_notify/sender_email_changed/stats may be called from any thread.
 */
#ifndef SENDER_H
#define SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct email_control;

struct store;
struct smtp_clients;
struct metrics;
struct outbox_publisher;
struct unsub_config;
struct dkim_signer;
struct providers;

struct sender_config {
    struct store *store;
    const struct smtp_clients *clients;
    struct metrics *metrics;
    struct outbox_publisher *outbox;
    const char *email_topic;
    int retry_max;                     /* retries after the first attempt before dead-lettering */
    int retry_base_ms;                 /* first retry delay; doubles per attempt, with jitter */
    int64_t lease_ms;                  /* how long a claimed copy stays leased */
    int batch;                         /* copies per SMTP send call (per connection) */
    int shutdown_grace_ms;             /* sender_stop waits this long for in-flight sends */
    int breaker_base_ms;               /* a client's circuit breaker: first backoff ... */
    int breaker_max_ms;                /* ... doubling up to this */
    const char *bounce_domain;         /* BOUNCE_DOMAIN: VERP envelope senders; NULL: the From */
    const struct dkim_signer *dkim;    /* NULL: copies go unsigned */
    const struct unsub_config *unsub;  /* List-Unsubscribe of each copy (may be off) */
    const struct providers *providers; /* THROTTLES_FILE (NULL: no provider limits) */
};

struct sender;

struct sender *sender_start(const struct sender_config *cfg, char *errbuf, size_t errlen);
/* sender_notify - new copies were committed (send, backfill, resume) */
void sender_notify(struct sender *s);
/* sender_email_changed - paused or tpm of an email changed in the store */
void sender_email_changed(struct sender *s, int64_t email_id);
/* sender_email_sync - the controls of emails as the store has them now
 * (another instance may have changed them; cluster.h), and the
 * identities read again at the next plan */
void sender_email_sync(struct sender *s, const struct email_control *v, size_t n);
/* sender_set_share - n instances send for one database: each TPM (emails,
 * SMTP clients, provider throttles) is split evenly; an identity's day
 * quota is charged in the database and needs no split */
void sender_set_share(struct sender *s, int n);
/* sender_identity_changed - an identity was created or changed (pause,
 * resume, a policy decision): its emails follow it from the next round */
void sender_identity_changed(struct sender *s, int64_t identity_id);
/* sender_email_reason - why the email's identity holds its copies back
 * right now (quota reached, outside its window, paused): true and the
 * text in buf, or false when nothing holds it */
bool sender_email_reason(struct sender *s, int64_t email_id, char *buf, size_t len);
/* sender_stop - stop claiming, release the queued copies back to the
 * store, let the copies being sent finish for up to shutdown_grace_ms,
 * then cancel their SMTP waits (those copies are released too: sent
 * again later, never counted sent), commit every outcome, join, free */
void sender_stop(struct sender *s);

/* sender_smtp_ok - false when a client's circuit breaker is open (why
 * names the client, the failure and the next probe) or its last attempt
 * failed to reach its server (connection, TLS or timeout), for /readyz */
bool sender_smtp_ok(struct sender *s, char *why, size_t len);

#endif
