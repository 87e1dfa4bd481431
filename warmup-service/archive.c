/* archive.c - the archiver (archive.h): its thread, one pass, the gzip
 * JSON Lines writer (zlib) and the hand-over to the local folder or S3.
 * A file is spooled as dir/.spool.jsonl.gz, then renamed to its name
 * (local) or PUT and removed (s3). Its name is copies-<updated_at ms of
 * the first copy>-<its id>.jsonl.gz: a pass redone after a crash makes the
 * same name, so it replaces the orphan instead of adding one. */
#include "archive.h"
#include "api.h"
#include "db.h"
#include "errbuf.h"
#include "log.h"
#include "store_cluster.h"
#include "store_history.h"
#include "timeutil.h"
#include "upload.h"
#include "upload_s3.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SPOOL_NAME ".spool.jsonl.gz"
#define DAY_MS (86400LL * 1000)

/* the spool being written by one batch */
struct writer {
    gzFile gz;
    bool failed;
};

static int write_row(void *arg, const struct history_row *r)
{
    struct writer *w = arg;
    json_object *o = api_history_json(r);
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    bool ok = gzwrite(w->gz, s, (unsigned)len) == (int)len && gzputc(w->gz, '\n') == '\n';
    json_object_put(o);
    if (!ok) {
        w->failed = true;
        return 1;
    }
    return 0;
}

/* sync_dir - fsync a folder (a rename in it is durable after); 0 or -1 */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* read_file - the whole file at path into a new buffer (*len); NULL on error */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat sb;
    char *data = NULL;
    if (fstat(fileno(f), &sb) == 0 && sb.st_size >= 0) {
        data = xmalloc((size_t)sb.st_size + 1);
        if (fread(data, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
            free(data);
            data = NULL;
        }
        *len = (size_t)sb.st_size;
    }
    fclose(f);
    return data;
}

/* one_file - the next batch (at most c->batch copies due at cutoff) into
 * one file, stored and committed: 0 (*rows moved; 0 when none is due), or
 * -1 with a message */
static int one_file(const struct archive_config *c, int64_t cutoff, int64_t *rows, char *errbuf,
                    size_t errlen)
{
    *rows = 0;
    char *spool = xasprintf("%s/%s", c->dir, SPOOL_NAME);
    char *path = NULL, *name = NULL, *key = NULL;
    int rc = -1;
    int fd = open(spool, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int fd2 = fd >= 0 ? dup(fd) : -1;
    struct writer w = {.gz = fd2 >= 0 ? gzdopen(fd2, "wb6") : NULL};
    if (!w.gz) {
        errbuf_set(errbuf, errlen, "archive: cannot write %s: %s", spool, strerror(errno));
        if (fd2 >= 0)
            close(fd2);
        goto out;
    }
    struct archive_span span;
    int sc = store_archive_scan(c->store, cutoff, c->batch, write_row, &w, &span);
    if (gzclose(w.gz) != Z_OK)
        w.failed = true;
    if (sc != 0 || w.failed) {
        errbuf_set(errbuf, errlen, "archive: %s",
                   w.failed ? "writing the spool file failed" : "reading the copies failed");
        goto out;
    }
    if (span.rows == 0) {
        rc = 0;
        goto out;
    }
    if (fsync(fd) != 0) {
        errbuf_set(errbuf, errlen, "archive: fsync %s: %s", spool, strerror(errno));
        goto out;
    }
    struct stat sb;
    fstat(fd, &sb);
    name = xasprintf("copies-%013lld-%lld.jsonl.gz", (long long)span.first_upd,
                     (long long)span.first_id);
    if (c->s3) {
        size_t len = 0;
        char *data = read_file(spool, &len);
        key = *c->s3->prefix ? xasprintf("%s/archives/%s", c->s3->prefix, name)
                             : xasprintf("archives/%s", name);
        int pc = data ? s3_put(c->s3, key, data, len, "application/gzip", errbuf, errlen) : -1;
        if (!data)
            errbuf_set(errbuf, errlen, "archive: cannot read %s back", spool);
        free(data);
        if (pc != 0)
            goto out;
    } else {
        path = xasprintf("%s/%s", c->dir, name);
        if (rename(spool, path) != 0 || sync_dir(c->dir) != 0) {
            errbuf_set(errbuf, errlen, "archive: cannot place %s: %s", path, strerror(errno));
            goto out;
        }
    }
    struct archive_entry a = {.name = c->s3 ? key : name,
                              .store = c->s3 ? "s3" : "local",
                              .first_id = span.min_id,
                              .last_id = span.max_id,
                              .rows = span.rows,
                              .bytes = (int64_t)sb.st_size,
                              .min_updated_at = span.first_upd,
                              .max_updated_at = span.last_upd,
                              .created_at = time_now_ms()};
    int cc = store_archive_commit(c->store, cutoff, &span, &a);
    if (cc != 0) {
        /* no row names the file: gone now, or replaced by the next pass */
        if (path)
            unlink(path);
        if (cc < 0)
            errbuf_set(errbuf, errlen, "archive: storing %s failed", a.name);
        else
            errbuf_set(errbuf, errlen, "archive: %s: copies changed during the pass", a.name);
        goto out;
    }
    log_info("archive: %lld copies into %s (%s, %lld bytes)", (long long)span.rows, a.name, a.store,
             (long long)a.bytes);
    *rows = span.rows;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(spool); /* renamed away already when local */
    free(spool);
    free(path);
    free(name);
    free(key);
    return rc;
}

/* pass - files until no copy is due or *stop is set */
static int pass(const struct archive_config *c, int64_t now_ms, atomic_bool *stop, int64_t *files,
                int64_t *rows, char *errbuf, size_t errlen)
{
    int64_t cutoff = now_ms - (int64_t)c->after_days * DAY_MS, n;
    *files = *rows = 0;
    errbuf_set(errbuf, errlen, "%s", "");
    if (!store_cluster_try(c->store, STORE_LOCK_ARCHIVE))
        return 0; /* another instance is archiving: one at a time, or two write one file */
    do {
        if (one_file(c, cutoff, &n, errbuf, errlen) != 0) {
            store_cluster_release(c->store, STORE_LOCK_ARCHIVE);
            return -1;
        }
        if (n > 0) {
            ++*files;
            *rows += n;
        }
    } while (n == c->batch && !(stop && atomic_load(stop)));
    int dropped; /* logged by the store */
    (void)store_archive_partitions(c->store, cutoff, &dropped);
    store_cluster_release(c->store, STORE_LOCK_ARCHIVE);
    return 0;
}

int archive_once(const struct archive_config *c, int64_t now_ms, int64_t *files, int64_t *rows,
                 char *errbuf, size_t errlen)
{
    return pass(c, now_ms, NULL, files, rows, errbuf, errlen);
}

void archive_clean(const struct archive_config *c)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        bool spool = strcmp(n, SPOOL_NAME) == 0;
        bool ours =
            strncmp(n, "copies-", 7) == 0 && len > 9 && strcmp(n + len - 9, ".jsonl.gz") == 0;
        if (!spool && !(ours && !c->s3 && store_archive_known(c->store, n) == 0))
            continue;
        char *p = xasprintf("%s/%s", c->dir, n);
        if (unlink(p) == 0 && !spool)
            log_warn("archive: removed %s: no archives row names it (a pass was interrupted)", p);
        free(p);
    }
    closedir(d);
}

struct archiver {
    struct archive_config c;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
};

static void *archiver_main(void *arg)
{
    struct archiver *a = arg;
    for (;;) {
        char err[512];
        int64_t files, rows;
        if (pass(&a->c, time_now_ms(), &a->stop, &files, &rows, err, sizeof err) != 0)
            log_error("%s", err);
        pthread_mutex_lock(&a->mu);
        struct timespec dl = time_mono_deadline((int64_t)a->c.interval_s * 1000);
        while (!atomic_load(&a->stop) && pthread_cond_timedwait(&a->cv, &a->mu, &dl) == 0)
            ;
        bool stop = atomic_load(&a->stop);
        pthread_mutex_unlock(&a->mu);
        if (stop)
            return NULL;
    }
}

struct archiver *archiver_start(const struct archive_config *c, char *errbuf, size_t errlen)
{
    errbuf_set(errbuf, errlen, "%s", "");
    if (c->after_days <= 0)
        return NULL;
    if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
        char *probe = xasprintf("%s/x", c->dir);
        int mk = db_mkdirs_for(probe);
        free(probe);
        if (mk != 0 || (mkdir(c->dir, 0700) != 0 && errno != EEXIST)) {
            errbuf_set(errbuf, errlen, "ARCHIVE_DIR: cannot create %s: %s", c->dir,
                       strerror(errno));
            return NULL;
        }
    }
    archive_clean(c);
    struct archiver *a = xcalloc(1, sizeof *a);
    a->c = *c;
    pthread_mutex_init(&a->mu, NULL);
    time_cond_init_mono(&a->cv);
    if (pthread_create(&a->th, NULL, archiver_main, a) != 0) {
        errbuf_set(errbuf, errlen, "cannot start the archiver thread");
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
        return NULL;
    }
    log_info("archive: copies in a final state older than %d days go to %s every %d s",
             c->after_days, c->s3 ? "the S3 store" : c->dir, c->interval_s);
    return a;
}

void archiver_stop(struct archiver *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    atomic_store(&a->stop, true);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
