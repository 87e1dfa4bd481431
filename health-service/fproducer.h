/* fproducer.h - a producer of the feedback topic (KAFKA_FEEDBACK_TOPIC):
 * idempotent (enable.idempotence, acks=all), a message given up after
 * FPRODUCER_TIMEOUT_MS; each message sent carries a flag its delivery
 * report sets, so the sender knows which events reached Kafka after
 * fproducer_wait. A producer that failed fatally (idempotence lost) is
 * replaced by a new one in fproducer_wait.
 *
 * Threads: one thread per producer (the one that sends and waits: the
 * delivery reports are served there, in fproducer_wait).
 */
#ifndef FPRODUCER_H
#define FPRODUCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define FPRODUCER_TIMEOUT_MS 10000 /* librdkafka message.timeout.ms */

struct fproducer;

/* fproducer_new - a producer to topic; extra: more librdkafka "key",
 * "value" pairs (the security settings), NULL-terminated, may be NULL,
 * borrowed for the producer's life (it may make a new handle); the other
 * strings are copied. NULL with the reason. */
struct fproducer *fproducer_new(const char *brokers, const char *client_id,
                                const char *const *extra, const char *topic, char *errbuf,
                                size_t errlen);
/* fproducer_send - value under key; *delivered becomes true when its
 * delivery report says Kafka has it (it stays false otherwise) and must
 * live until fproducer_wait returned. 0, or -1 with the reason (not queued) */
int fproducer_send(struct fproducer *p, const char *key, const char *value, bool *delivered,
                   char *errbuf, size_t errlen);
/* fproducer_wait - until every message sent has its delivery report
 * (FPRODUCER_TIMEOUT_MS and a little more, less when *stop becomes true),
 * then what is left purged: afterwards no report refers to a flag */
void fproducer_wait(struct fproducer *p, const atomic_bool *stop);
/* fproducer_free - flush what is queued without waiting, destroy
 * (bounded); NULL no-op */
void fproducer_free(struct fproducer *p);

#endif
