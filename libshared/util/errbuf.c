/* errbuf.c - see errbuf.h. */
#include "errbuf.h"

#include <stdarg.h>
#include <stdio.h>

void errbuf_set(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

void errbuf_vset(char *errbuf, size_t errlen, const char *fmt, va_list ap)
{
    if (errbuf && errlen > 0)
        vsnprintf(errbuf, errlen, fmt, ap);
}
