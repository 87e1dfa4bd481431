/* dblock.c - exclusive lock file beside a SQLite database (dblock.h).
 * Main thread. */
#include "dblock.h"
#include "errbuf.h"
#include "db.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int dblock_acquire(const char *db_path, char *errbuf, size_t errlen)
{
    char *path = xasprintf("%s.lock", db_path);
    if (db_mkdirs_for(db_path) != 0) {
        errbuf_set(errbuf, errlen, "cannot create the folder of %s: %s", db_path, strerror(errno));
        free(path);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        errbuf_set(errbuf, errlen, "cannot create the lock file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (err == EWOULDBLOCK)
            errbuf_set(errbuf, errlen,
                       "DB_PATH %s is in use by another process (pid %s, lock %s): one process per "
                       "SQLite database; stop it, or give this one its own DB_PATH",
                       db_path, *pid ? pid : "unknown", path);
        else
            errbuf_set(errbuf, errlen, "cannot lock %s: %s", path, strerror(err));
        close(fd);
        free(path);
        return -1;
    }
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        errbuf_set(errbuf, errlen, "cannot write the lock file %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

void dblock_release(int fd)
{
    if (fd >= 0)
        close(fd);
}
