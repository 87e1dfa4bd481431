/* service.c - shared start-up and shutdown (see service.h). Owns the
 * signal set, the metrics registry, the joined route table and the HTTP
 * server. The main thread calls everything here but the two handlers,
 * which run on the HTTP pool threads. */
#include "service.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "version.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct service {
    const struct service_info *info;
    sigset_t signals;
    void (*on_hup)(void *arg); /* SIGHUP: reload, on the main thread */
    void *hup_arg;
    struct metrics *metrics;
    struct http_route *routes; /* the service's, then the common ones */
    struct http_server *http;
};

/* GET /healthz - the process answers */
static void svc_healthz(struct http_request *req, struct http_response *resp)
{
    (void)req;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    http_reply_json(resp, 200, o);
}

/* GET /metrics - the registry in Prometheus text format */
static void svc_metrics(struct http_request *req, struct http_response *resp)
{
    http_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
                    metrics_render(req->metrics));
}

static const struct http_route common_routes[] = {
    {.method = "GET", .pattern = "/healthz", .handler = svc_healthz, .flags = HTTP_PUBLIC},
    {.method = "GET", .pattern = "/metrics", .handler = svc_metrics, .flags = HTTP_PUBLIC},
};
#define NCOMMON (sizeof common_routes / sizeof common_routes[0])

void service_usage(const struct service_info *info, FILE *f)
{
    fprintf(f,
            "Usage: %s [--help | --version]\n"
            "%s\n"
            "\n"
            "Configured by environment variables; any NAME may instead be NAME_FILE, the\n"
            "path of a file holding the value (secrets). A bad value stops start-up.\n"
            "\n",
            info->name, info->summary);
    svc_config_usage(f, info->name, info->default_port, info->vars);
}

/* parse_args - --help and --version answer and exit; nothing else is taken */
static void parse_args(const struct service_info *info, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            service_usage(info, stdout);
            exit(fflush(stdout) == 0 ? 0 : 1);
        }
        if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            printf("%s %s\n", info->name, PROJECT_VERSION);
            exit(fflush(stdout) == 0 ? 0 : 1);
        }
    }
    if (argc > 1) {
        fprintf(stderr, "%s: unknown argument '%s'\n", info->name, argv[1]);
        service_usage(info, stderr);
        exit(2);
    }
}

struct service *service_new(const struct service_info *info, int argc, char **argv)
{
    parse_args(info, argc, argv);
    struct service *svc = xcalloc(1, sizeof *svc);
    svc->info = info;
    sigemptyset(&svc->signals);
    sigaddset(&svc->signals, SIGTERM);
    sigaddset(&svc->signals, SIGINT);
    sigaddset(&svc->signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &svc->signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    svc->metrics = metrics_new();
    return svc;
}

struct metrics *service_metrics(const struct service *svc)
{
    return svc->metrics;
}

int service_http_start(struct service *svc, const struct svc_config *c,
                       const struct http_route *routes, size_t nroutes, void *app, char *errbuf,
                       size_t errlen)
{
    svc->routes = xcalloc(nroutes + NCOMMON, sizeof *svc->routes);
    if (nroutes)
        memcpy(svc->routes, routes, nroutes * sizeof *routes);
    memcpy(svc->routes + nroutes, common_routes, sizeof common_routes);
    struct http_config hc = {
        .routes = svc->routes,
        .nroutes = nroutes + NCOMMON,
        .app = app,
        .metrics = svc->metrics,
    };
    svc_http_config(c, &hc);
    svc->http = http_start(&hc, errbuf, errlen);
    return svc->http ? 0 : -1;
}

int service_port(const struct service *svc)
{
    return http_port(svc->http);
}

void service_on_hup(struct service *svc, void (*fn)(void *arg), void *arg)
{
    svc->on_hup = fn;
    svc->hup_arg = arg;
}

int service_wait(struct service *svc)
{
    int sig = 0;
    for (;;) {
        sigwait(&svc->signals, &sig);
        if (sig != SIGHUP)
            break;
        if (svc->on_hup) {
            log_info("signal %d (SIGHUP): reloading", sig);
            svc->on_hup(svc->hup_arg);
        } else {
            log_info("signal %d (SIGHUP): nothing to reload", sig);
        }
    }
    log_info("signal %d: shutting down", sig);
    http_stop(svc->http);
    svc->http = NULL;
    return sig;
}

void service_free(struct service *svc)
{
    if (!svc)
        return;
    http_stop(svc->http);
    metrics_free(svc->metrics);
    free(svc->routes);
    free(svc);
    log_info("stopped");
}
