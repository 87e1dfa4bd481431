/* httpconn.h - the server's open connections and their deadlines.
 *
 * libmicrohttpd's own timeout is an idle timeout: a client sending one
 * header line every few seconds keeps a connection forever. This table
 * gives each connection an absolute deadline for the phase it is in:
 * waiting for a request's headers (from accept, or from the end of the
 * previous request), then receiving its body (a fixed time plus one second
 * per body_min_rate bytes received), and none while the server handles it or
 * writes the answer. A reaper thread shuts down (never closes: the
 * descriptor stays libmicrohttpd's) every connection past its deadline;
 * when the table is near max_conns, waiting connections get a short
 * deadline so that new clients are served.
 *
 * Threads: the HTTP pool threads call httpconn_open/_phase/_close for their
 * own connections; the reaper thread walks the table. One mutex guards the
 * table. httpconn_close must run before libmicrohttpd closes the
 * descriptor (its NOTIFY_CONNECTION CLOSED callback does).
 */
#ifndef HTTPCONN_H
#define HTTPCONN_H

#include <stddef.h>
#include <stdint.h>

struct httpconn_table;
struct httpconn;
struct metrics;

struct httpconn_config {
    unsigned max_conns;        /* the global cap */
    unsigned header_timeout_s; /* headers must arrive within */
    unsigned body_timeout_s;   /* body base time */
    unsigned body_min_rate;    /* bytes per second that extend the body time by 1 s */
    unsigned busy_timeout_ms;  /* header deadline when the table is near max_conns */
    struct metrics *metrics;   /* optional: http_connections_dropped_total */
};

enum httpconn_phase {
    HTTPCONN_HEADERS, /* waiting for a request line and headers */
    HTTPCONN_BODY,    /* receiving the body */
    HTTPCONN_SERVING, /* handled or answered: no deadline */
};

/* httpconn_table_new - starts the reaper thread. NULL on failure. */
struct httpconn_table *httpconn_table_new(const struct httpconn_config *cfg);
/* httpconn_table_free - stops the reaper; connections must be closed */
void httpconn_table_free(struct httpconn_table *t);

/* httpconn_open - a new connection on descriptor fd, in HTTPCONN_HEADERS.
 * Caller keeps the handle until httpconn_close. */
struct httpconn *httpconn_open(struct httpconn_table *t, int fd);
/* httpconn_phase - the connection enters a phase (deadline restarts) */
void httpconn_phase(struct httpconn_table *t, struct httpconn *c, enum httpconn_phase p);
/* httpconn_body - len more body bytes arrived (extends the body deadline) */
void httpconn_body(struct httpconn_table *t, struct httpconn *c, size_t len);
/* httpconn_close - forget and free c; NULL no-op */
void httpconn_close(struct httpconn_table *t, struct httpconn *c);
/* httpconn_busy - the table holds at least 7/8 of max_conns */
int httpconn_busy(struct httpconn_table *t);
/* httpconn_reap - one pass of the reaper at time now_ms (tests); returns
 * the number of connections shut down */
int httpconn_reap(struct httpconn_table *t, int64_t now_ms);

#endif
