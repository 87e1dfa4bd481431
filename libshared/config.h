/* config.h - configuration from the environment.
 *
 * Every variable NAME may instead be given as NAME_FILE, the path of a file
 * holding the value (Docker/Kubernetes secrets); one trailing newline (LF
 * or CRLF) is stripped. Setting both NAME and NAME_FILE is an error.
 *
 * Two layers: config_get_* return 0/-1 with a message in errbuf (testable);
 * config_* call log_fatal() with one clear line naming the variable, for
 * start-up code. Strings returned are heap copies: caller frees.
 * Reads the process environment: call from the main thread before other
 * threads start.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* config_get_str - *out = value, or a copy of def (may be NULL) when unset
 * or empty. -1 on NAME+NAME_FILE both set, unreadable file, or a value over
 * 64 KiB. The message names the variable but never includes the value. */
int config_get_str(const char *name, const char *def, char **out, char *errbuf, size_t errlen);
/* config_get_long - decimal integer within [min, max]; def when unset */
int config_get_long(const char *name, long def, long min, long max, long *out, char *errbuf,
                    size_t errlen);
/* config_get_bool - true/false/1/0/yes/no/on/off (case-insensitive) */
int config_get_bool(const char *name, bool def, bool *out, char *errbuf, size_t errlen);
/* config_get_enum - value must be one of choices (NULL-terminated,
 * case-insensitive); *out is the index in choices */
int config_get_enum(const char *name, const char *def, const char *const *choices, int *out,
                    char *errbuf, size_t errlen);

/* fatal-on-error variants for start-up */
char *config_str(const char *name, const char *def);
long config_long(const char *name, long def, long min, long max);
bool config_bool(const char *name, bool def);
int config_enum(const char *name, const char *def, const char *const *choices);

#endif
