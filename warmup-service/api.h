/* api.h - the warmup service's HTTP handlers and route table. Handlers
 * run on the HTTP pool threads; they reach the modules via req->app
 * (struct app). */
#ifndef API_H
#define API_H

#include "httpd.h"

#include <stdint.h>

/* the route table handed to http_start */
extern const struct http_route api_routes[];
extern const size_t api_nroutes;

void api_register(struct http_request *req, struct http_response *resp);
void api_users(struct http_request *req, struct http_response *resp);
void api_email_ids(struct http_request *req, struct http_response *resp);
extern const struct http_stream_ops api_import_ops;
void api_send(struct http_request *req, struct http_response *resp);
void api_emails(struct http_request *req, struct http_response *resp);
void api_email(struct http_request *req, struct http_response *resp);
void api_pause(struct http_request *req, struct http_response *resp);
void api_resume(struct http_request *req, struct http_response *resp);
void api_rate_limit(struct http_request *req, struct http_response *resp);
void api_reconcile(struct http_request *req, struct http_response *resp);
void api_dlq(struct http_request *req, struct http_response *resp);
void api_readyz(struct http_request *req, struct http_response *resp);
/* api_suppress.c */
void api_suppressions(struct http_request *req, struct http_response *resp);
void api_suppress_add(struct http_request *req, struct http_response *resp);
void api_suppress_delete(struct http_request *req, struct http_response *resp);
void api_unsub_page(struct http_request *req, struct http_response *resp);
void api_unsub(struct http_request *req, struct http_response *resp);
/* api_identities.c */
void api_identity_create(struct http_request *req, struct http_response *resp);
void api_identities(struct http_request *req, struct http_response *resp);
void api_identity(struct http_request *req, struct http_response *resp);
void api_identity_pause(struct http_request *req, struct http_response *resp);
void api_identity_resume(struct http_request *req, struct http_response *resp);
/* api_campaigns.c */
void api_campaign_create(struct http_request *req, struct http_response *resp);
void api_campaigns(struct http_request *req, struct http_response *resp);
void api_campaign(struct http_request *req, struct http_response *resp);
void api_campaign_start(struct http_request *req, struct http_response *resp);
void api_campaign_pause(struct http_request *req, struct http_response *resp);
void api_campaign_resume(struct http_request *req, struct http_response *resp);
void api_campaign_rate_limit(struct http_request *req, struct http_response *resp);
void api_campaign_reconcile(struct http_request *req, struct http_response *resp);

/* api_messages.c */
void api_message(struct http_request *req, struct http_response *resp);
/* api_templates.c */
void api_template_create(struct http_request *req, struct http_response *resp);
void api_template_put(struct http_request *req, struct http_response *resp);
void api_templates(struct http_request *req, struct http_response *resp);
void api_template(struct http_request *req, struct http_response *resp);
struct template;
/* api_template_json - a template version as the API answers it (new object) */
struct json_object *api_template_json(const struct template *t);
/* api_upload.c: presigned multipart uploads of a campaign's list; api_import.c */
void api_upload_init(struct http_request *req, struct http_response *resp);
void api_upload_complete(struct http_request *req, struct http_response *resp);
void api_upload_abort(struct http_request *req, struct http_response *resp);
void api_upload_status(struct http_request *req, struct http_response *resp);
extern const struct http_stream_ops api_upload_part_ops;
void api_import_status(struct http_request *req, struct http_response *resp);
struct import_row;
/* api_import_json - an import's progress as the API answers it (new object) */
struct json_object *api_import_json(const struct import_row *im, bool campaign);
/* api_history.c: GET /history and GET /archives (DESIGN 9.6) */
void api_history(struct http_request *req, struct http_response *resp);
void api_archives(struct http_request *req, struct http_response *resp);
struct history_row;
/* api_history_json - a copy as /history and the archive files show it (new object) */
struct json_object *api_history_json(const struct history_row *r);

#endif
