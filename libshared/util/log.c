/* log.c - line logger. Any thread; global settings are written once at
 * start-up by log_init() before threads exist. */
#include "log.h"
#include "timeutil.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_TEXT;
static char g_service[64] = "app";

static const char *const level_names[] = {"debug", "info", "warn", "error", "none"};

void log_init(enum log_level level, enum log_format fmt, const char *service)
{
    g_level = level;
    g_format = fmt;
    if (service)
        strlcpy_ok(g_service, service, sizeof g_service);
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_NONE; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

int log_parse_format(const char *s, enum log_format *out)
{
    if (strcasecmp(s, "text") == 0)
        *out = LOG_TEXT;
    else if (strcasecmp(s, "json") == 0)
        *out = LOG_JSON;
    else
        return -1;
    return 0;
}

bool log_enabled(enum log_level level)
{
    return level >= g_level && level < LOG_NONE;
}

static void emit(enum log_level level, const char *msg)
{
    char ts[40];
    time_rfc3339_ms(time_now_ms(), ts, sizeof ts);
    char *line;
    if (g_format == LOG_JSON) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ts", json_object_new_string(ts));
        json_object_object_add(o, "level", json_object_new_string(level_names[level]));
        json_object_object_add(o, "service", json_object_new_string(g_service));
        json_object_object_add(o, "msg", json_object_new_string(msg));
        line = xasprintf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        line = xasprintf("%s %s %s %s\n", ts, level_names[level], g_service, msg);
    }
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(2, line + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        /* no raw newline may split a line */
        for (char *p = small; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        emit(level, small);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    for (char *p = big; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    emit(level, big);
    free(big);
}

void log_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(LOG_ERROR, msg);
    exit(2);
}
