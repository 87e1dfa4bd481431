/* providers.c - THROTTLES_FILE (providers.h): the groups, and a sorted
 * table of their domain entries for lookups by binary search. */
#include "providers.h"
#include "errbuf.h"
#include "fileio.h"
#include "jsonx.h"
#include "xalloc.h"

#include <ctype.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROVIDERS_FILE_MAX (1024 * 1024)
#define PROVIDERS_MAX 1024
#define DOMAIN_MAX 253

struct entry {
    const char *key; /* a domain, or a suffix with its leading "." */
    int group;
};

struct providers {
    struct provider_group *v;
    size_t n;
    struct entry *e; /* sorted by key */
    size_t ne;
};

void providers_free(struct providers *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].name);
        for (size_t k = 0; k < p->v[i].ndomains; k++)
            free(p->v[i].domains[k]);
        free(p->v[i].domains);
    }
    free(p->v);
    free(p->e);
    free(p);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

/* domain_ok - lower-cases d in place; a host name or ".suffix" of one */
static bool domain_ok(char *d)
{
    size_t n = strlen(d);
    const char *s = d[0] == '.' ? d + 1 : d;
    if (n == 0 || n > DOMAIN_MAX || !*s || s[0] == '.' || d[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (char *c = d; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x80 && !isalnum(u) && u != '-' && u != '.' && u != '_')
            return false;
        if (u >= 'A' && u <= 'Z')
            *c = (char)(u - 'A' + 'a');
    }
    return true;
}

static int limit_of(json_object *g, const char *key, size_t i, int *out, char *errbuf,
                    size_t errlen)
{
    int64_t v = 0;
    char why[192];
    if (jsonx_get_int(g, key, false, 0, 100000000, &v, NULL, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: entry %zu: %s", i + 1, why);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_group(json_object *g, size_t i, struct provider_group *out, char *errbuf,
                       size_t errlen)
{
    static const char *const keys[] = {"provider", "domains",     "per_minute",
                                       "per_hour", "connections", NULL};
    char why[192];
    const char *name;
    if (!json_object_is_type(g, json_type_object)) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: entry %zu is not an object", i + 1);
        return -1;
    }
    if (jsonx_check_keys(g, keys, why, sizeof why) != 0 ||
        jsonx_get_string(g, "provider", true, 64, &name, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: entry %zu: %s", i + 1, why);
        return -1;
    }
    for (const char *c = name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') {
            errbuf_set(errbuf, errlen,
                       "THROTTLES_FILE: entry %zu: provider may hold only letters, digits, '-', "
                       "'_' and '.'",
                       i + 1);
            return -1;
        }
    out->name = xstrdup(name);
    json_object *d;
    if (!json_object_object_get_ex(g, "domains", &d) || !json_object_is_type(d, json_type_array) ||
        json_object_array_length(d) == 0) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: provider %s: domains must be a non-empty array",
                   name);
        return -1;
    }
    size_t nd = json_object_array_length(d);
    out->domains = xcalloc(nd, sizeof *out->domains);
    for (size_t k = 0; k < nd; k++) {
        json_object *x = json_object_array_get_idx(d, k);
        if (!json_object_is_type(x, json_type_string)) {
            errbuf_set(errbuf, errlen, "THROTTLES_FILE: provider %s: domain %zu is not a string",
                       name, k + 1);
            return -1;
        }
        char *dom = xstrdup(json_object_get_string(x));
        out->domains[out->ndomains++] = dom;
        if (!domain_ok(dom)) {
            errbuf_set(errbuf, errlen, "THROTTLES_FILE: provider %s: '%.64s' is not a domain", name,
                       json_object_get_string(x));
            return -1;
        }
    }
    return limit_of(g, "per_minute", i, &out->per_minute, errbuf, errlen) ||
                   limit_of(g, "per_hour", i, &out->per_hour, errbuf, errlen) ||
                   limit_of(g, "connections", i, &out->connections, errbuf, errlen)
               ? -1
               : 0;
}

struct providers *providers_parse(const char *json, char *errbuf, size_t errlen)
{
    json_object *root = NULL;
    char why[192];
    if (jsonx_parse(json, strlen(json), &root, why, sizeof why) != 0) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: %s", why);
        return NULL;
    }
    struct providers *p = xcalloc(1, sizeof *p);
    if (!json_object_is_type(root, json_type_array)) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: must be a JSON array");
        goto fail;
    }
    size_t n = json_object_array_length(root);
    if (n > PROVIDERS_MAX) {
        errbuf_set(errbuf, errlen, "THROTTLES_FILE: more than %d providers", PROVIDERS_MAX);
        goto fail;
    }
    p->v = xcalloc(n ? n : 1, sizeof *p->v);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        p->n++;
        if (parse_group(json_object_array_get_idx(root, i), i, &p->v[i], errbuf, errlen) != 0)
            goto fail;
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(p->v[k].name, p->v[i].name) == 0) {
                errbuf_set(errbuf, errlen, "THROTTLES_FILE: provider %s is listed twice",
                           p->v[i].name);
                goto fail;
            }
        total += p->v[i].ndomains;
    }
    p->e = xcalloc(total ? total : 1, sizeof *p->e);
    for (size_t i = 0; i < p->n; i++)
        for (size_t k = 0; k < p->v[i].ndomains; k++)
            p->e[p->ne++] = (struct entry){.key = p->v[i].domains[k], .group = (int)i};
    qsort(p->e, p->ne, sizeof *p->e, entry_cmp);
    for (size_t i = 1; i < p->ne; i++)
        if (strcmp(p->e[i - 1].key, p->e[i].key) == 0) {
            errbuf_set(errbuf, errlen, "THROTTLES_FILE: domain %s is in providers %s and %s",
                       p->e[i].key, p->v[p->e[i - 1].group].name, p->v[p->e[i].group].name);
            goto fail;
        }
    json_object_put(root);
    return p;
fail:
    json_object_put(root);
    providers_free(p);
    return NULL;
}

struct providers *providers_load(const char *path, char *errbuf, size_t errlen)
{
    if (!path || !*path)
        return xcalloc(1, sizeof(struct providers));
    char *text = NULL;
    if (file_read_small("THROTTLES_FILE", path, PROVIDERS_FILE_MAX, false, &text, NULL, errbuf,
                        errlen) != 0)
        return NULL;
    struct providers *p = providers_parse(text, errbuf, errlen);
    free(text);
    return p;
}

static int lookup(const struct providers *p, const char *key)
{
    struct entry k = {.key = key};
    const struct entry *e = bsearch(&k, p->e, p->ne, sizeof *p->e, entry_cmp);
    return e ? e->group : -1;
}

int providers_index(const struct providers *p, const char *domain)
{
    if (!p || p->ne == 0 || !domain)
        return -1;
    int g = lookup(p, domain);
    if (g >= 0)
        return g;
    /* ".example.com" covers example.com and below: try each parent, longest first */
    for (const char *s = domain; s; s = strchr(s + 1, '.')) {
        if (s == domain) {
            char dotted[DOMAIN_MAX + 2];
            size_t n = strlen(domain);
            if (n > DOMAIN_MAX)
                return -1;
            dotted[0] = '.';
            memcpy(dotted + 1, domain, n + 1);
            g = lookup(p, dotted);
        } else {
            g = lookup(p, s);
        }
        if (g >= 0)
            return g;
    }
    return -1;
}

const char *providers_name(const struct providers *p, const char *domain)
{
    int g = providers_index(p, domain);
    return g >= 0 ? p->v[g].name : domain;
}

size_t providers_count(const struct providers *p)
{
    return p ? p->n : 0;
}

const struct provider_group *providers_get(const struct providers *p, size_t i)
{
    return p && i < p->n ? &p->v[i] : NULL;
}

int providers_find(const struct providers *p, const char *name)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strcasecmp(p->v[i].name, name) == 0)
            return (int)i;
    return -1;
}
