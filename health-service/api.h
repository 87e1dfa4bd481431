/* api.h - the health service's route table (handlers in api.c). */
#ifndef HEALTH_API_H
#define HEALTH_API_H

#include "httpd.h"

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

/* GET /providers (api_providers.c) */
void api_providers(struct http_request *req, struct http_response *resp);
/* GET /emails/{id}/reconciliation (api_reconcile.c) */
void api_reconciliation(struct http_request *req, struct http_response *resp);
/* GET /analytics (api_analytics.c) */
void api_analytics(struct http_request *req, struct http_response *resp);
/* GET /seed_mailboxes (api_seeds.c) */
void api_seed_mailboxes(struct http_request *req, struct http_response *resp);

#endif
