/* csv.h - streaming RFC 4180 CSV parser.
 *
 * Feed bytes in chunks of any size (a 100 MB file never needs to sit in
 * memory); each complete record is handed to the callback with the line
 * number it started on (1-based). Handles: quoted fields with "" escapes
 * and embedded commas/CR/LF, CRLF or LF line ends, a UTF-8 BOM at the very
 * start, empty lines (skipped, not reported). Errors are per record: the
 * callback gets err != NULL ("unterminated quoted field", "quote inside
 * unquoted field", "characters after closing quote", "field too long",
 * "too many fields") with nfields == 0, and the parser resynchronises at
 * the next line end. Field size and count are capped.
 * One parser per stream, one thread at a time.
 */
#ifndef CSV_H
#define CSV_H

#include <stddef.h>

#define CSV_MAX_FIELD 4096
#define CSV_MAX_FIELDS 64

/* fields[i] are NUL-terminated, borrowed until the callback returns.
 * Return 0 to continue, non-zero to stop (csv_feed then returns it). */
typedef int (*csv_record_fn)(void *arg, long line, const char *const *fields, size_t nfields,
                             const char *err);

struct csv_parser;

struct csv_parser *csv_new(csv_record_fn fn, void *arg);
void csv_free(struct csv_parser *p);
/* csv_feed - parse a chunk; 0, or the callback's non-zero return */
int csv_feed(struct csv_parser *p, const char *data, size_t len);
/* csv_finish - end of input: emits a last record without a line end, or the
 * unterminated-quote error; 0 or the callback's non-zero return */
int csv_finish(struct csv_parser *p);

#endif
