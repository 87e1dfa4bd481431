/* providers.h - recipient providers: THROTTLES_FILE's named groups of
 * recipient domains with their sending limits (DESIGN 9.3).
 *
 * The file is a JSON array:
 *   [{"provider":"gmail","domains":["gmail.com","googlemail.com"],
 *     "per_minute":600,"per_hour":20000,"connections":4}]
 * Limits are optional (absent or 0: none). A domain entry "example.com"
 * matches that domain; ".example.com" matches it and every subdomain; an
 * exact entry wins over a suffix, a longer suffix over a shorter one. A
 * domain in no group is a provider of its own, named by the domain.
 * A name or domain in two groups is refused.
 *
 * Loaded once at start-up; read-only afterwards, so any thread may look
 * up at the same time. The caller owns the struct (providers_free).
 */
#ifndef PROVIDERS_H
#define PROVIDERS_H

#include <stddef.h>

/* one group as read from the file; strings owned by the providers */
struct provider_group {
    char *name;
    char **domains; /* lower-cased, as written (a leading "." kept) */
    size_t ndomains;
    int per_minute, per_hour, connections; /* 0: no limit */
};

struct providers;

/* providers_load - read and check the file at path; path NULL or "":
 * no groups (every domain is its own provider). NULL with the reason
 * (naming THROTTLES_FILE) on error. */
struct providers *providers_load(const char *path, char *errbuf, size_t errlen);
/* providers_parse - the same from JSON text */
struct providers *providers_parse(const char *json, char *errbuf, size_t errlen);
/* providers_free - NULL no-op */
void providers_free(struct providers *p);

/* providers_index - the group of a (lower-case) domain, or -1; p NULL: -1 */
int providers_index(const struct providers *p, const char *domain);
/* providers_name - the provider a domain belongs to: its group's name,
 * else the domain itself (borrowed from p or from domain) */
const char *providers_name(const struct providers *p, const char *domain);
/* providers_count / providers_get - the groups in file order; p NULL: 0 */
size_t providers_count(const struct providers *p);
const struct provider_group *providers_get(const struct providers *p, size_t i);
/* providers_find - the group named name, or -1 */
int providers_find(const struct providers *p, const char *name);

#endif
