/* messages.c - transactional sends (messages.h). */
#include "messages.h"
#include "addr.h"
#include "app.h"
#include "identities.h"
#include "log.h"
#include "mime.h"
#include "msgid.h"
#include "sender.h"
#include "smtp/smtp_clients.h"
#include "store.h"
#include "tmpl.h"
#include "users.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(struct message_result *out, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    out->status = status;
    out->code = code;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
}

/* merged - the user's attributes overlaid by the request's data (data
 * wins): a new object, or NULL when neither has any */
static json_object *merged(const char *attributes, json_object *data)
{
    json_object *m = attributes ? json_tokener_parse(attributes) : NULL;
    if (m && !json_object_is_type(m, json_type_object)) {
        json_object_put(m);
        m = NULL;
    }
    if (!data)
        return m;
    if (!m)
        m = json_object_new_object();
    json_object_object_foreach(data, k, v) json_object_object_add(m, k, json_object_get(v));
    return m;
}

void messages_submit(struct app *app, const struct message_req *m, struct message_result *out)
{
    char why[200], key[TMPL_KEY_MAX + 1];
    struct addr to, fa;
    struct template t = {0};
    struct identity ident = {0};
    struct user_input u = {0};
    char *uname = NULL, *uattrs = NULL;
    json_object *vars = NULL, *rest = NULL; /* rest: data without its name */
    memset(out, 0, sizeof *out);
    int priority = 0;
    if (m->priority && strcmp(m->priority, "high") == 0)
        priority = 1;
    else if (m->priority && strcmp(m->priority, "normal") != 0) {
        fail(out, 400, "invalid_field", "priority must be \"high\" or \"normal\"");
        goto out;
    }
    if (!m->to || addr_parse(m->to, &to, why, sizeof why) != 0) {
        fail(out, 400, "invalid_field", "to is not a valid address: %s", m->to ? why : "missing");
        goto out;
    }
    /* data's "name" is the recipient's name (a user's own otherwise): checked
     * as a display name, the rest as attributes */
    json_object *dname = NULL;
    if (m->data && json_object_is_type(m->data, json_type_object) &&
        json_object_object_get_ex(m->data, "name", &dname)) {
        if (!json_object_is_type(dname, json_type_string) ||
            mime_check_header_text(json_object_get_string(dname), USER_NAME_MAX, why, sizeof why) !=
                0) {
            fail(out, 400, "invalid_field", "data: name must be a display name (%s)",
                 json_object_is_type(dname, json_type_string) ? why : "not a string");
            goto out;
        }
        rest = json_object_new_object();
        json_object_object_foreach(m->data, k, v) if (strcmp(k, "name") != 0)
            json_object_object_add(rest, k, json_object_get(v));
    }
    if (user_input_attributes(&u, rest ? rest : m->data, "data", out->error, sizeof out->error) !=
        0) {
        out->status = 400;
        out->code = "invalid_field";
        goto out;
    }
    int rc =
        m->template_name ? store_get_template(app->store, m->template_name, m->version, &t) : 1;
    if (rc == 1) {
        fail(out, 400, "unknown_template", "no template '%.64s'%s",
             m->template_name ? m->template_name : "", m->version ? " in that version" : "");
        goto out;
    }
    if (rc != 0)
        goto unavailable;
    const char *from = m->from ? m->from : t.from;
    if (!from) {
        fail(out, 400, "no_from", "template '%s' has no from address and the request gives none",
             t.name);
        goto out;
    }
    if (addr_parse(from, &fa, why, sizeof why) != 0 || addr_ascii(&fa, why, sizeof why) != 0) {
        fail(out, 400, "invalid_field", "from is not a valid address: %s", why);
        goto out;
    }
    const char *from_name = m->from_name ? m->from_name : m->from ? NULL : t.from_name;
    if (from_name && mime_check_header_text(from_name, USER_NAME_MAX, why, sizeof why) != 0) {
        fail(out, 400, "invalid_field", "from_name: %s", why);
        goto out;
    }
    const struct smtp_clients *cl = app->clients;
    const char *client = m->smtp_client;
    if (client && smtp_clients_find(cl, client) < 0) {
        fail(out, 400, "invalid_field", "smtp_client '%.64s' is not configured", client);
        goto out;
    }
    if (store_identity_by_address(app->store, fa.norm, &ident) == 0) {
        if (!from_name)
            from_name = ident.name;
        if (!client && ident.smtp_client && smtp_clients_find(cl, ident.smtp_client) >= 0)
            client = ident.smtp_client;
    }
    /* the recipient's name and attributes when registered */
    rc = store_user_vars(app->store, to.norm, &uname, &uattrs);
    if (rc < 0)
        goto unavailable;
    if (dname) { /* the request's name before the user's */
        free(uname);
        uname = xstrdup(json_object_get_string(dname));
    }
    vars = merged(uattrs, rest ? rest : m->data);
    json_object *defaults = json_tokener_parse(t.defaults);
    struct tmpl_vars v = {
        .name = uname ? uname : "", .address = to.norm, .data = vars, .defaults = defaults};
    const char *parts[] = {t.subject, t.text, t.html};
    bool missing = false;
    for (int i = 0; i < 3 && !missing; i++)
        missing = tmpl_missing(parts[i], &v, key, sizeof key);
    json_object_put(defaults);
    if (missing) {
        fail(out, 400, "missing_placeholder",
             "placeholder {{%s}} of template '%s' version %d has no value in data%s and no "
             "default",
             key, t.name, t.version, uname ? " or the user's attributes" : "");
        goto out;
    }
    struct email_spec spec = {
        .from = fa.norm,
        .from_name = from_name,
        .subject = t.subject,
        .body = t.text,
        .html = t.html,
        .smtp_client = client ? client : cl->v[cl->default_idx].s.name,
        .msgid_domain = app->cfg->message_id_domain ? app->cfg->message_id_domain : fa.domain,
        .kind = EMAIL_KIND_MESSAGES,
        .priority = priority,
        .template_name = t.name,
        .template_version = t.version,
        .defaults = t.defaults,
    };
    const char *data_text =
        vars ? json_object_to_json_string_ext(vars, JSON_C_TO_STRING_PLAIN) : NULL;
    struct message_spec ms = {
        .email = &spec,
        .recipient = to.norm,
        .domain = to.domain,
        .name = uname ? uname : "",
        .data = data_text,
        .request_key = m->request_key,
    };
    struct message_ref ref;
    rc = store_add_message(app->store, &ms, &ref);
    if (rc == STORE_DUPLICATE) {
        fail(out, 409, "address_suppressed", "%s is on the suppression list", to.norm);
        goto out;
    }
    if (rc != 0)
        goto unavailable;
    out->status = 202;
    out->email_id = ref.email_id;
    out->replayed = ref.replayed;
    out->message_id = msgid_copy(ref.email_id, ref.salt, ref.copy_id, ref.msgid_domain);
    free(ref.salt);
    free(ref.msgid_domain);
    if (ref.replayed) {
        log_info("message replayed email_id=%lld message_id=%s domain=%s: its request was stored "
                 "before",
                 (long long)out->email_id, out->message_id, to.domain);
        goto out;
    }
    sender_notify(app->sender);
    log_info("message queued email_id=%lld message_id=%s domain=%s template=%s version=%d "
             "priority=%s",
             (long long)out->email_id, out->message_id, to.domain, t.name, t.version,
             priority ? "high" : "normal");
    goto out;
unavailable:
    fail(out, 503, "unavailable", "the message could not be stored");
out:
    json_object_put(rest);
    json_object_put(vars);
    free(uname);
    free(uattrs);
    user_input_cleanup(&u);
    template_cleanup(&t);
    identity_cleanup(&ident);
}
