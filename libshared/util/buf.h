/* buf.h - growable byte buffer with a size cap, always NUL-terminated
 * (curl dynbuf). Embedded: buf_init(&b, cap) / buf_cleanup(&b).
 * On exceeding the cap the append fails with -1 and the buffer is emptied
 * (its memory freed), so a failed request never keeps a large buffer.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated; NULL while empty */
    size_t len;
    size_t alloc;
    size_t cap; /* maximum len */
};

void buf_init(struct buf *b, size_t cap);
void buf_cleanup(struct buf *b);
/* buf_reset - empty the buffer, keep its memory */
void buf_reset(struct buf *b);
/* buf_trim - empty the buffer; free its memory if it holds more than keep
 * octets (a long-lived buffer does not stay at its largest use) */
void buf_trim(struct buf *b, size_t keep);
/* buf_append - 0, or -1 if len would exceed the cap (buffer then freed) */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendc(struct buf *b, char c);
/* buf_reserve - room for n more octets (up to the cap), so that appends up
 * to that size do not reallocate; contents unchanged */
void buf_reserve(struct buf *b, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* buf_str - the contents as a C string ("" when empty); borrowed */
const char *buf_str(const struct buf *b);
/* buf_steal - hand the string to the caller (free()), buffer is emptied */
char *buf_steal(struct buf *b);

#endif
