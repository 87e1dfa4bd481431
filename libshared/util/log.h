/* log.h - one line per event, text (key=value) or JSON, to stderr.
 *
 * The level check happens before the arguments are formatted. Callers pass
 * ids (email_id, message_id, domain), never a password or a token: the
 * logger cannot know what is secret, so secrets simply never reach it.
 * Thread-safe: a line is written with one write(2).
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_NONE };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/* log_init - set level, format and the service name shown on each line */
void log_init(enum log_level level, enum log_format fmt, const char *service);
/* log_parse_level / log_parse_format - 0, or -1 for an unknown name */
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);
bool log_enabled(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define log_info(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_INFO))                                                                 \
            log_write(LOG_INFO, __VA_ARGS__);                                                      \
    } while (0)
#define log_warn(...)                                                                              \
    do {                                                                                           \
        if (log_enabled(LOG_WARN))                                                                 \
            log_write(LOG_WARN, __VA_ARGS__);                                                      \
    } while (0)
#define log_error(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_ERROR))                                                                \
            log_write(LOG_ERROR, __VA_ARGS__);                                                     \
    } while (0)

/* log_fatal - one clear line, then exit(2); for start-up failures */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
