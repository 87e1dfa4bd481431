/* errbuf.h - the errbuf/errlen convention (librdkafka style): functions
 * that can fail explain why in a caller-provided buffer. Pure. */
#ifndef ERRBUF_H
#define ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* errbuf_set - printf into errbuf[errlen] when there is one (NULL or 0:
 * nothing); a truncated message is acceptable */
void errbuf_set(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* errbuf_vset - errbuf_set with a va_list */
void errbuf_vset(char *errbuf, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
