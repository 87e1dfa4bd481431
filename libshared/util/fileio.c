/* fileio.c - small whole-file reads. See fileio.h. */
#include "fileio.h"
#include "buf.h"
#include "errbuf.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int file_read_small(const char *what, const char *path, size_t max, bool strip_eol, char **out,
                    size_t *outlen, char *errbuf, size_t errlen)
{
    struct buf b;
    char chunk[4096], eb[128];
    int rc = -1;
    buf_init(&b, max);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        errbuf_set(errbuf, errlen, "%s: cannot open '%s': %s", what, path,
                   strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errbuf_set(errbuf, errlen, "%s: cannot read '%s': %s", what, path,
                       strerror_r(errno, eb, sizeof eb));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n) < 0) {
            errbuf_set(errbuf, errlen, "%s: '%s' is larger than %zu bytes", what, path, max);
            goto out;
        }
    }
    size_t len = b.len;
    if (strip_eol && len > 0 && b.data[len - 1] == '\n') {
        len--;
        if (len > 0 && b.data[len - 1] == '\r')
            len--;
    }
    if (len > 0 && memchr(b.data, '\0', len)) {
        errbuf_set(errbuf, errlen, "%s: '%s' contains a NUL byte", what, path);
        goto out;
    }
    *out = xstrndup(len ? b.data : "", len);
    if (outlen)
        *outlen = len;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (b.data)
        explicit_bzero(b.data, b.alloc); /* may be a secret */
    explicit_bzero(chunk, sizeof chunk);
    buf_cleanup(&b);
    return rc;
}
