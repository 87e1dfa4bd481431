/* app.h - the warmup service's modules, created by main and shared
 * (read-only pointers) with the HTTP handlers through http_request.app. */
#ifndef APP_H
#define APP_H

#include "wconfig.h"

struct store;
struct outbox_publisher;
struct sender;
struct feedback;
struct sendq;
struct identities;
struct smtp_clients;
struct metrics;
struct metric;
struct uploads;
struct importer;
struct fanout;

struct app {
    const struct wconfig *cfg;
    struct store *store;
    struct outbox_publisher *outbox;
    struct sender *sender;
    struct feedback *feedback;     /* the feedback-events consumer */
    struct sendq *sendq;           /* the email-send consumer */
    struct identities *identities; /* sending identities' state, gauge and decisions */
    const struct smtp_clients *clients;
    struct metrics *metrics;
    struct metric *users_registered; /* users_registered_total */
    struct metric *users_duplicate;  /* users_duplicate_total */
    struct metric *import_invalid;   /* users_import_invalid_total */
    struct uploads *uploads;         /* the upload store (UPLOAD_STORE) */
    struct importer *importer;       /* the background CSV importer */
    struct fanout *fanout;           /* the background fan-out of broadcasts */
};

#endif
