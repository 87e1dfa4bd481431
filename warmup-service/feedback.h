/* feedback.h - the warmup service's consumer of feedback-events
 * (KAFKA_FEEDBACK_TOPIC, consumer group "warmup-service"; DESIGN 9.2,
 * 9.3): an email.bounced with "bounce":"hard" suppresses its recipient
 * with reason hard_bounce, an email.complained with reason complaint
 * (suppress.h: the entry, the queued copies dropped and the
 * user.unsubscribed event). A soft bounce suppresses nothing. A
 * placement.summary for an identity's address goes through WARMUP_POLICY
 * (policy.h) onto that identity's provider state, with the summary's
 * counts and rates; each change is logged and counted (identities.h) and
 * the sender told; a summary for an address without an identity is
 * counted and ignored. A value that is not a v1 email.bounced,
 * email.complained or placement.summary is logged, counted and skipped: it
 * never blocks its partition. Each Kafka batch's suppressions are applied
 * in one store transaction and its summaries in a second, and its offsets
 * are committed only after both (at least once; a redelivered event finds
 * the address already suppressed, and a summary applied again meets the
 * state it led to and changes nothing more).
 *
 * Counted in feedback_events_total{type="hard_bounce"|"soft_bounce"|
 * "complaint"|"placement_summary"|"invalid"} and
 * warmup_placement_summaries_total{result="applied"|"unknown_identity"}
 * once a batch is committed.
 *
 * Threads: kconsumer's (decoding on its consumer thread, the transaction
 * on its writer thread); start, stop and stats from the owner (main, the
 * HTTP pool for stats). */
#ifndef FEEDBACK_H
#define FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>

struct store;
struct outbox_publisher;
struct metrics;
struct policy;
struct identities;

#define FEEDBACK_GROUP_ID "warmup-service"

struct feedback_config {
    const char *brokers;
    const char *topic;        /* KAFKA_FEEDBACK_TOPIC */
    const char *user_topic;   /* where user.unsubscribed goes (emailId-events) */
    const char *const *extra; /* more librdkafka settings (security); may be NULL */
    struct store *store;
    struct outbox_publisher *outbox;
    struct metrics *metrics;
    const struct policy *policy;   /* WARMUP_POLICY */
    struct identities *identities; /* decisions logged and counted, the sender told */
};

struct feedback;

/* feedback_start - join the group and consume; NULL with the reason in
 * errbuf. Every pointer of cfg must outlive feedback_stop. */
struct feedback *feedback_start(const struct feedback_config *cfg, char *errbuf, size_t errlen);
/* feedback_stop - finish the batch being applied, commit the offsets,
 * leave the group, free. NULL is a no-op. */
void feedback_stop(struct feedback *f);
/* feedback_kafka_up - a broker connection of the consumer is up */
bool feedback_kafka_up(struct feedback *f);

#endif
