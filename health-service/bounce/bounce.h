/* bounce.h - the bounce mailbox reader (DESIGN 9.2, README "Bounces and
 * complaints"): every interval, reads the new reports of BOUNCE_MAILBOX
 * (mailbox.c), parses them (report.c), matches them to copies
 * (bounce_match.c), records each bounce or complaint in the health store
 * and publishes it as email.bounced / email.complained on the feedback
 * topic (key: the recipient address) with an idempotent producer.
 *
 * At least once: a report is flagged \Seen (or moved to processed_folder)
 * only after its event's delivery report succeeded; a crash, an IMAP
 * failure or a Kafka outage leaves it unseen, to be read, recorded (the
 * store ignores a second report for a copy) and published again. A report
 * that cannot be parsed is left alone, counted and logged once; one about
 * no tracked copy too, after it was tried again for a while (its email.sent
 * event may still be on its way). Both are skipped until the folder's
 * UIDVALIDITY changes or the service restarts.
 *
 * Threads: bounce_new / bounce_start / bounce_stop on the main thread; the
 * reader thread "bounce" does the rest (one IMAP session, the producer).
 */
#ifndef BOUNCE_H
#define BOUNCE_H

#include <stddef.h>

struct hstore;
struct metrics;

struct bounce_config {
    struct hstore *store;
    struct metrics *metrics;
    const char *brokers;
    const char *const *kafka_extra; /* the security settings; may be NULL */
    const char *topic;              /* KAFKA_FEEDBACK_TOPIC */
    int interval_s;                 /* CHECK_INTERVAL */
};

struct bounce_reader;

/* bounce_new - the reader of the mailbox settings json (BOUNCE_MAILBOX),
 * checked, not started; NULL with a message naming the bad setting */
struct bounce_reader *bounce_new(const char *json, char *errbuf, size_t errlen);
/* bounce_start - the producer and the thread; -1 with a message (b is
 * still to be freed with bounce_stop) */
int bounce_start(struct bounce_reader *b, const struct bounce_config *cfg, char *errbuf,
                 size_t errlen);
/* bounce_stop - end the round in progress (events not yet delivered stay
 * unflagged), join, free; NULL is a no-op */
void bounce_stop(struct bounce_reader *b);

#endif
