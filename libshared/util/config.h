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

/* config_get_secret - config_get_str for a secret (password, token), no
 * default. Whether or not the read succeeds, NAME and NAME_FILE then leave
 * the environment, their values overwritten where they lie: the
 * initial environment stays readable in /proc/PID/environ after unsetenv()
 * alone. Every secret variable is read through this (or dropped by
 * config_drop_secret), so none outlives start-up. The environment's strings
 * must be writable (as execve and setenv make them; not putenv of a
 * literal). */
int config_get_secret(const char *name, char **out, char *errbuf, size_t errlen);
/* config_drop_secret - the same removal for a secret the configuration in
 * force does not read */
void config_drop_secret(const char *name);

/* config_host_is_loopback - host is "localhost", 127.0.0.0/8 or ::1:
 * traffic to it never leaves the machine (the rule for credentials over an
 * unencrypted connection, which are refused to any other host) */
bool config_host_is_loopback(const char *host);

/* fatal-on-error variants for start-up */
char *config_str(const char *name, const char *def);
char *config_secret(const char *name);
long config_long(const char *name, long def, long min, long max);
bool config_bool(const char *name, bool def);
int config_enum(const char *name, const char *def, const char *const *choices);

#endif
