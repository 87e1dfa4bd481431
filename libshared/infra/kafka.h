/* kafka.h - common librdkafka configuration.
 *
 * kafka_conf_new() builds a conf with bootstrap.servers, client.id and the
 * project's logging hook (librdkafka log lines go through log.h). Extra
 * settings come as a NULL-terminated "key", "value" list. Caller owns the
 * returned conf until it is handed to rd_kafka_new().
 */
#ifndef KAFKA_H
#define KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id,
                                const char *const *extra, char *errbuf, size_t errlen);

/* kafka_security - how the clients reach the brokers, from
 * KAFKA_SECURITY_PROTOCOL (PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL,
 * default PLAINTEXT), KAFKA_SASL_MECHANISM (PLAIN | SCRAM-SHA-256 |
 * SCRAM-SHA-512, default PLAIN; SASL only), KAFKA_SASL_USERNAME and
 * KAFKA_SASL_PASSWORD (both required with SASL, refused without),
 * KAFKA_CA_FILE (PEM bundle for SSL and SASL_SSL; default the system
 * store). librdkafka checks the broker's certificate and host name. */
struct kafka_security {
    char *protocol;  /* librdkafka's lower-case name */
    char *mechanism; /* NULL unless SASL */
    char *username, *password, *ca_file;
    /* the librdkafka "key", "value" pairs for the fields above,
     * NULL-terminated, pointing into this struct: the extra settings of
     * outbox_config and kconsumer_config */
    const char *conf[11];
};

/* kafka_producer_new - an idempotent producer (acks=all) on conf from
 * kafka_conf_new, with message.timeout.ms and the delivery-report callback;
 * conf is consumed either way. NULL with "kafka producer: ..." in errbuf. */
rd_kafka_t *kafka_producer_new(rd_kafka_conf_t *conf, int timeout_ms,
                               void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                               char *errbuf, size_t errlen);
/* kafka_security_load - read and check the variables (the password through
 * config_get_secret, so it leaves the environment). PLAIN over
 * SASL_PLAINTEXT is refused when a broker in brokers is not loopback: it
 * would send the password in clear text. Each setting is also tried on a
 * librdkafka conf. 0, or -1 with one line naming the variable (never the
 * password); free with kafka_security_cleanup() either way. Main thread,
 * at start-up. */
int kafka_security_load(struct kafka_security *s, const char *brokers, char *errbuf, size_t errlen);
/* kafka_security_cleanup - free (the password wiped first) */
void kafka_security_cleanup(struct kafka_security *s);

/* kafka_topics_parse - KAFKA_TOPIC "email-events,emailId-events" into
 * exactly two names (defaults when s is NULL or empty). -1 if not two
 * non-empty names. Copies into the caller's buffers. */
int kafka_topics_parse(const char *s, char *email_topic, size_t len1, char *user_topic,
                       size_t len2);

/* kafka_destroy_bounded - rd_kafka_destroy(rk), waiting at most
 * timeout_ms. librdkafka 2.0-2.3 can hang forever in rd_kafka_destroy
 * after a broker outage (a leaked partition reference keeps a broker
 * thread alive: confluentinc/librdkafka#4486, #4674); the destroy then
 * goes on in a detached thread, a warning is logged and 0 is returned so
 * the caller's shutdown completes. 1 when the handle was destroyed. The
 * caller must not touch rk afterwards in either case. Call it only once
 * everything it owned through rk (messages, queues, topics) is released:
 * the process is expected to exit soon after a timeout. */
int kafka_destroy_bounded(rd_kafka_t *rk, int timeout_ms);

#define KAFKA_TOPIC_EMAIL_DEFAULT "email-events"
#define KAFKA_TOPIC_USER_DEFAULT "emailId-events"

#endif
