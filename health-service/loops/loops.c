/* loops.c - the FeedbackLoop registry and FEEDBACK_LOOPS_FILE. Adding a
 * loop type is one file (loop_<name>.c) and one line in registry[]. */
#include "loops.h"
#include "errbuf.h"
#include "jsonx.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct feedback_loop_ops *const registry[] = {
    &loop_mock_ops,
    &loop_imap_ops,
};

const struct feedback_loop_ops *feedback_loop_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

/* built-in entries: the mock loop with rates that look like each provider,
 * so a fresh install shows plausible numbers until real seed mailboxes are
 * configured */
static const struct {
    const char *domain;
    const char *settings;
} builtins[] = {
    {"gmail.com",
     "{\"loop\":\"mock\",\"delivered\":0.85,\"spam\":0.1,\"opened\":0.5,\"read\":0.2}"},
    {"googlemail.com",
     "{\"loop\":\"mock\",\"delivered\":0.85,\"spam\":0.1,\"opened\":0.5,\"read\":0.2}"},
    {"yahoo.com",
     "{\"loop\":\"mock\",\"delivered\":0.8,\"spam\":0.15,\"opened\":0.45,\"read\":0.15}"},
    {"outlook.com",
     "{\"loop\":\"mock\",\"delivered\":0.75,\"spam\":0.2,\"opened\":0.4,\"read\":0.15}"},
    {"hotmail.com",
     "{\"loop\":\"mock\",\"delivered\":0.75,\"spam\":0.2,\"opened\":0.4,\"read\":0.15}"},
    {"live.com",
     "{\"loop\":\"mock\",\"delivered\":0.75,\"spam\":0.2,\"opened\":0.4,\"read\":0.15}"},
    {"icloud.com",
     "{\"loop\":\"mock\",\"delivered\":0.8,\"spam\":0.1,\"opened\":0.5,\"read\":0.2}"},
    {"default", "{\"loop\":\"mock\",\"delivered\":0.8,\"spam\":0.1,\"opened\":0.5,\"read\":0.2}"},
};

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* loop_of - the loop type settings name, checked by creating (and
 * destroying) a loop for domain; NULL with the reason in errbuf */
static const struct feedback_loop_ops *loop_of(const char *domain, json_object *settings,
                                               char *errbuf, size_t errlen)
{
    const char *name = NULL;
    char err[256];
    if (!json_object_is_type(settings, json_type_object) ||
        jsonx_get_string(settings, "loop", true, 32, &name, err, sizeof err) != 0) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: %s: %s", domain,
                   json_object_is_type(settings, json_type_object) ? err
                                                                   : "must be an object or null");
        return NULL;
    }
    const struct feedback_loop_ops *ops = feedback_loop_find(name);
    if (!ops) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: %s: unknown loop '%.32s'", domain, name);
        return NULL;
    }
    void *probe = ops->create(domain, settings, err, sizeof err);
    if (!probe) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: %s: %s", domain, err);
        return NULL;
    }
    ops->destroy(probe);
    return ops;
}

/* set_entry - add or replace the entry for domain; takes settings (NULL:
 * the domain has no loop) */
static int set_entry(struct loops_config *c, const char *domain, json_object *settings,
                     char *errbuf, size_t errlen)
{
    const struct feedback_loop_ops *ops = NULL;
    if (settings && !(ops = loop_of(domain, settings, errbuf, errlen))) {
        json_object_put(settings);
        return -1;
    }
    char *d = xstrdup(domain);
    lower(d);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].domain, d) == 0) {
            json_object_put(c->v[i].settings);
            c->v[i].settings = settings;
            c->v[i].ops = ops;
            free(d);
            return 0;
        }
    }
    c->v = xreallocarray(c->v, c->n + 1, sizeof *c->v);
    c->v[c->n++] = (struct loop_entry){.domain = d, .ops = ops, .settings = settings};
    return 0;
}

int loops_config_load(struct loops_config *c, const char *path, char *errbuf, size_t errlen)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (set_entry(c, builtins[i].domain, json_tokener_parse(builtins[i].settings), errbuf,
                      errlen) != 0) {
            loops_config_cleanup(c);
            return -1;
        }
    }
    if (!path || !*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: cannot read %s", path);
        loops_config_cleanup(c);
        return -1;
    }
    char *text = xmalloc(1024 * 1024 + 1);
    size_t len = fread(text, 1, 1024 * 1024 + 1, f);
    fclose(f);
    json_object *root = NULL;
    char err[256];
    int rc = -1;
    if (len > 1024 * 1024) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: %s is larger than 1 MiB", path);
    } else if (jsonx_parse_object(text, len, &root, err, sizeof err) != 0) {
        errbuf_set(errbuf, errlen, "FEEDBACK_LOOPS_FILE: %s", err);
    } else {
        rc = 0;
        json_object_object_foreach(root, key, val)
        {
            if (rc == 0 && set_entry(c, key, json_object_get(val), errbuf, errlen) != 0)
                rc = -1;
        }
    }
    json_object_put(root);
    free(text);
    if (rc != 0)
        loops_config_cleanup(c);
    return rc;
}

void loops_config_cleanup(struct loops_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].domain);
        json_object_put(c->v[i].settings);
    }
    free(c->v);
    memset(c, 0, sizeof *c);
}

const struct loop_entry *loops_config_for(const struct loops_config *c, const char *domain)
{
    const struct loop_entry *def = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (strcasecmp(c->v[i].domain, domain) == 0)
            return &c->v[i];
        if (strcmp(c->v[i].domain, "default") == 0)
            def = &c->v[i];
    }
    return def;
}
