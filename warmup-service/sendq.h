/* sendq.h - the consumer of the email-send topic (KAFKA_SEND_TOPIC;
 * DESIGN 9.5, seed 004): other systems produce send requests
 *   {"userId":..,"emailType":"welcome","recipient":"a@b.c",
 *    "templateData":{..},"priority":"high"}   (key = the recipient)
 * and every warmup-service instance consumes them in one group
 * (KAFKA_SEND_GROUP_ID, default "warmup-service-send"; a group of its
 * own so its rebalances never stall the feedback-events consumer). Each
 * request is a POST /messages (messages.h) with template = emailType,
 * data = templateData, and an idempotency key made of its topic,
 * partition and offset, so a request delivered again (at least once)
 * makes no second copy. A request that cannot be sent (bad JSON, unknown
 * template, missing placeholder, suppressed address, ...) is answered by
 * an email.failed event on the email topic with the reason in
 * smtp_reply and email_id 0 (no email holds it), stored in the outbox.
 * When the store is down the batch is applied again later (nothing is
 * skipped). Counted in email_send_requests_total{result="queued"|
 * "refused"|"replayed"}.
 *
 * Threads: kconsumer's writer thread runs the requests; start, stop and
 * kafka_up from the owner (main, the HTTP pool for /readyz). */
#ifndef SENDQ_H
#define SENDQ_H

#include <stdbool.h>
#include <stddef.h>

struct app;

#define SENDQ_GROUP_ID "warmup-service-send"

struct sendq_config {
    const char *brokers;
    const char *topic;        /* KAFKA_SEND_TOPIC */
    const char *group_id;     /* KAFKA_SEND_GROUP_ID */
    const char *email_topic;  /* where email.failed goes */
    const char *const *extra; /* more librdkafka settings (security); may be NULL */
    struct app *app;          /* messages_submit's modules */
};

struct sendq;

/* sendq_start - join the group and consume; NULL with the reason in
 * errbuf. Every pointer of cfg must outlive sendq_stop. */
struct sendq *sendq_start(const struct sendq_config *cfg, char *errbuf, size_t errlen);
/* sendq_stop - finish the batch being applied, commit, leave, free. NULL no-op. */
void sendq_stop(struct sendq *q);
/* sendq_kafka_up - a broker connection of the consumer is up */
bool sendq_kafka_up(struct sendq *q);

#endif
