/* happ.h - the health service's modules, created by main and shared with
 * the HTTP handlers (req->app) and the consumer handler. */
#ifndef HAPP_H
#define HAPP_H

#include "hconfig.h"

#include <stddef.h>

struct hstore;
struct loops_config;
struct kconsumer;
struct metrics;
struct metric;
struct providers;
struct seeds;

struct happ {
    const struct hconfig *cfg;
    struct hstore *store;
    struct kconsumer *consumer;
    const struct loops_config *loops;
    struct metrics *metrics;
    const struct providers *providers; /* THROTTLES_FILE; NULL: none */
    struct seeds *seeds;               /* SEED_MAILBOXES_FILE (empty without) */
    struct metric *events_consumed;    /* health_events_consumed_total */
    struct metric *events_invalid;     /* health_events_invalid_total */
};

/* the kconsumer pipeline (ingest.c): ingest_prepare validates a batch
 * (consumer thread); ingest_apply stores it in one transaction and counts
 * (writer thread); ingest_release frees what prepare made */
struct kmsg;
void *ingest_prepare(void *arg, const struct kmsg *msgs, size_t n);
int ingest_apply(void *arg, void *work);
void ingest_release(void *arg, void *work);

#endif
