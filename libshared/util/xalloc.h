/* xalloc.h - allocation with one failure policy: abort with a message.
 *
 * Every allocation in the project goes through these (OpenSMTPD xmalloc,
 * Postfix mymalloc): out of memory is not a recoverable condition for a
 * service, and one policy avoids half-checked mallocs. Free with free().
 */
#ifndef XALLOC_H
#define XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* xreallocarray - realloc for nmemb*size with overflow check */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xasprintf - printf into a new string; caller frees */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* strlcpy_ok - copy src into dst[len]; returns 0, or -1 if it was truncated */
int strlcpy_ok(char *dst, const char *src, size_t len);

#endif
