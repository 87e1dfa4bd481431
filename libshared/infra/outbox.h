/* outbox.h - transactional outbox drained to Kafka by a publisher thread.
 *
 * Writers add event rows to the `outbox` table inside their own SQLite
 * transaction (outbox_add), so an event exists iff the change it describes
 * was committed. The publisher thread owns its own SQLite connection and an
 * idempotent producer (enable.idempotence=true, acks=all); it reads rows in
 * id order, produces them, and deletes a row only when its delivery report
 * says it was written. A failed delivery leaves the row, to be produced
 * again after a backoff: a broker outage delays events but loses none.
 * Delivery is at least once (consumers dedupe).
 *
 * A row is never produced twice at once: rows produced or waiting for a
 * retry are at most max_inflight; the row id is the message opaque; the
 * message key (partitioning) is the row's key. Delivered rows are deleted
 * in one transaction at most every 200 ms (or per 5000 rows), so that the
 * deletes do not compete with the service's own writers for the write
 * lock once per delivery report; a crash in between only publishes them
 * again. For the same reason they commit at synchronous=NORMAL (the WAL is
 * synced by the service's next FULL commit or the next checkpoint): a
 * delete lost to a power cut only publishes its rows again. A row Kafka
 * can never take (e.g. larger than message.max.bytes) is logged as an
 * error and skipped, but kept in the table, until the next start. kafka_up: a delivery succeeded or
 * a metadata request (1 s timeout, every 2 s while nothing is delivered) was answered; false after
 * a failed probe or "all brokers down".
 *
 * Threads: outbox_add on the caller's thread with the caller's connection;
 * the publisher thread does everything else; notify/stop/stats from any.
 */
#ifndef OUTBOX_H
#define OUTBOX_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the table, to be included in a service's migrations */
#define OUTBOX_SCHEMA_SQL                                                                          \
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, key TEXT,"                  \
    " value TEXT NOT NULL, created_at INTEGER NOT NULL);"

/* outbox_add - insert one event row using db (inside the caller's open
 * transaction). key may be NULL. Uses a statement cached per connection
 * (sqlite3_prepare_v3 with SQLITE_PREPARE_PERSISTENT, found again with
 * sqlite3_next_stmt). 0 or -1. */
int outbox_add(sqlite3 *db, const char *topic, const char *key, const char *value);

struct outbox_publisher;

struct outbox_config {
    const char *db_path;
    const char *brokers;
    const char *client_id;
    int batch;              /* rows read per pass (default 500) */
    int poll_ms;            /* idle poll when not notified (default 200) */
    int message_timeout_ms; /* librdkafka message.timeout.ms (default 30000) */
    int max_inflight;       /* rows produced or waiting to be retried, at most (default 10000) */
    /* more librdkafka "key", "value" pairs, NULL-terminated; may be NULL */
    const char *const *extra;
};

/* outbox_publisher_start - open the DB (its own connection; the outbox
 * table must exist), create the producer, start the thread. NULL with a
 * message on failure. cfg's strings are copied. */
struct outbox_publisher *outbox_publisher_start(const struct outbox_config *cfg, char *errbuf,
                                                size_t errlen);
/* outbox_publisher_notify - rows were committed: wake the thread now */
void outbox_publisher_notify(struct outbox_publisher *p);
/* outbox_publisher_stop - stop the thread after one last pass over the
 * table (rows committed just before the stop get produced too), wait up to
 * flush_ms for in-flight deliveries (rd_kafka_flush), free everything. Rows
 * not delivered stay for the next run. NULL is a no-op. */
void outbox_publisher_stop(struct outbox_publisher *p, int flush_ms);

struct outbox_stats {
    uint64_t published; /* rows delivered and deleted since start */
    uint64_t failed;    /* delivery reports with an error */
    int64_t pending;    /* rows in the table at the last pass */
    bool kafka_up;      /* a broker answered recently */
};
void outbox_publisher_stats(struct outbox_publisher *p, struct outbox_stats *out);

#endif
