/* service.h - the start-up and shutdown both services' main() share: the
 * command line (--help, --version), the signals, the metrics registry, and
 * the HTTP server started from the shared settings (svcconfig.h) with the
 * common routes (/healthz, /metrics) joined to the service's own. /readyz
 * stays the service's: what "ready" means differs.
 *
 * The order, main thread only:
 *
 *     svc = service_new(&info, argc, argv);      arguments, signals, registry
 *     ... read the configuration, create the modules (service_metrics) ...
 *     service_http_start(svc, &cfg.svc, ...);    last: handlers reach every module
 *     service_wait(svc);                         SIGTERM/SIGINT (SIGHUP: reload), then the HTTP
 * server stops
 *     ... stop and free the modules ...
 *     service_free(svc);                         the registry last: modules hold its metrics
 */
#ifndef SERVICE_H
#define SERVICE_H

#include "svcconfig.h"

#include <stddef.h>
#include <stdio.h>

struct http_route;
struct metrics;

struct service_info {
    const char *name;           /* "warmup-service": --version, the usage, DB_PATH's default */
    const char *summary;        /* one line under the usage line */
    int default_port;           /* PORT's default */
    const struct svc_var *vars; /* the service's own variables, beyond svc_config_vars */
};

struct service;

/* service_new - before anything else in main, before any thread: --help
 * prints the usage and exits 0, --version the version and exits 0, any
 * other argument prints the usage on stderr and exits 2. Then blocks
 * SIGTERM, SIGINT and SIGHUP in every thread to come (service_wait takes
 * them),
 * ignores SIGPIPE (a peer closing a socket must not kill us) and creates
 * the metrics registry. info is borrowed for the process's life. */
struct service *service_new(const struct service_info *info, int argc, char **argv);

/* service_usage - the usage text: arguments and every variable with its
 * default and meaning */
void service_usage(const struct service_info *info, FILE *f);

/* service_metrics - the registry, valid until service_free */
struct metrics *service_metrics(const struct service *svc);

/* service_http_start - serve routes (copied) followed by /healthz and
 * /metrics, with the listener settings of c; app is handed to every
 * handler as req->app. 0, or -1 with a message. c and app must outlive
 * service_wait. */
int service_http_start(struct service *svc, const struct svc_config *c,
                       const struct http_route *routes, size_t nroutes, void *app, char *errbuf,
                       size_t errlen);
/* service_port - the port the HTTP server listens on (PORT 0: the one
 * chosen) */
int service_port(const struct service *svc);

/* service_on_hup - fn(arg) runs on the main thread, inside service_wait,
 * at each SIGHUP (a reload); without it a SIGHUP is logged and ignored */
void service_on_hup(struct service *svc, void (*fn)(void *arg), void *arg);

/* service_wait - wait for SIGTERM or SIGINT (running the SIGHUP handler
 * meanwhile), then stop the HTTP server (running requests finish, no new
 * one starts) so the modules can be stopped; returns the signal */
int service_wait(struct service *svc);

/* service_free - the HTTP server if still running, then the registry;
 * NULL no-op */
void service_free(struct service *svc);

#endif
