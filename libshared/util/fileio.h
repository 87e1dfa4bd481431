/* fileio.h - reading small files whole (secrets, settings, value files).
 *
 * file_read_small() reads at most max bytes; the caller owns *out (a
 * NUL-terminated heap copy, freed with free()). The read buffer is wiped
 * before it is freed, since the file may hold a secret; messages name
 * `what` and the path, never the contents. Any thread.
 */
#ifndef FILEIO_H
#define FILEIO_H

#include <stdbool.h>
#include <stddef.h>

/* file_read_small - whole file as a string, one trailing LF/CRLF stripped
 * when strip_eol; a file over max bytes or with a NUL byte is an error.
 * 0, or -1 with "WHAT: ..." in errbuf. *outlen (may be NULL) gets the
 * length. */
int file_read_small(const char *what, const char *path, size_t max, bool strip_eol, char **out,
                    size_t *outlen, char *errbuf, size_t errlen);

#endif
