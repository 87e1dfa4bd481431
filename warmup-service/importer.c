/* importer.c - the background CSV importer (importer.h).
 *
 * Thread: one, importer_main, from importer_start to importer_stop. It
 * owns the job it runs; the HTTP threads only queue imports (a row in
 * the imports table) and wake it. Memory per job is the CSV parser's
 * record buffer, one batch of IMPORTER_BATCH rows and the reported
 * invalid lines: flat whatever the file's size.
 *
 * When idle it also aborts, every ten minutes, the uploads left open a
 * day after their part URLs expired (uploads_sweep), so abandoned parts
 * do not stay on disk or in the bucket.
 *
 * Resume: each batch commits with resume_at = the line of its last
 * record and the counters so far; a resumed job parses the source again
 * from the start (the header is always read) and skips every record up to
 * resume_at. A users import commits its users and then its progress (two
 * transactions: store_register_batch is the registration's own): after a
 * crash between the two, that batch's users count as duplicates.
 */
#include "importer.h"
#include "app.h"
#include "csvrows.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "sender.h"
#include "store.h"
#include "store_uploads.h"
#include "timeutil.h"
#include "upload.h"
#include "xalloc.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { STOP_DB = 1, STOP_HEADER = 2, STOP_QUIT = 3 };

struct importer {
    struct app *app;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, kick;
};

struct job {
    struct importer *im;
    struct import_row row;
    bool campaign;
    struct csv_parser *csv;
    struct csvrows hdr;
    bool header_seen;
    char header_err[200];
    json_object *invalid;
    bool invalid_dirty;
    struct import_progress p;
    struct user_input batch[IMPORTER_BATCH];
    char *attrs[IMPORTER_BATCH];
    int64_t lines[IMPORTER_BATCH];
    size_t n;
};

int import_users_commit(struct app *app, const struct user_input *u, char *const *attrs, size_t n,
                        long *added, long *dups)
{
    struct user_reg regs[IMPORTER_BATCH];
    int result[IMPORTER_BATCH];
    *added = *dups = 0;
    if (n == 0)
        return 0;
    if (n > IMPORTER_BATCH)
        return -1;
    for (size_t i = 0; i < n; i++) {
        regs[i] = user_input_reg(&u[i]);
        regs[i].attributes = attrs[i];
    }
    if (store_register_batch(app->store, regs, n, app->cfg->svc.user_topic, result) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (result[i] == STORE_INSERTED)
            (*added)++;
        else
            (*dups)++;
    }
    metric_add(app->users_registered, (double)*added);
    metric_add(app->users_duplicate, (double)*dups);
    outbox_publisher_notify(app->outbox);
    sender_notify(app->sender);
    return 0;
}

static void clear_batch(struct job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        user_input_cleanup(&j->batch[i]);
        free(j->attrs[i]);
        j->attrs[i] = NULL;
    }
    j->n = 0;
}

/* flush - commit the batch and the progress; 0 or STOP_DB */
static int flush(struct job *j)
{
    char now[32];
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    j->p.now = now;
    j->p.invalid = j->invalid_dirty
                       ? json_object_to_json_string_ext(
                             j->invalid, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                       : NULL;
    struct store *s = j->im->app->store;
    int rc;
    if (j->campaign) {
        struct recipient_in v[IMPORTER_BATCH];
        for (size_t i = 0; i < j->n; i++)
            v[i] = (struct recipient_in){.address = j->batch[i].addr.norm,
                                         .name = j->batch[i].name,
                                         .domain = j->batch[i].addr.domain,
                                         .attributes = j->attrs[i],
                                         .line = j->lines[i]};
        int64_t dups;
        rc = store_import_recipients(s, j->row.id, j->row.campaign_id, v, j->n, &j->p, &dups);
    } else {
        long added, dups;
        rc = import_users_commit(j->im->app, j->batch, j->attrs, j->n, &added, &dups);
        if (rc == 0) {
            j->p.imported += added;
            j->p.duplicates += dups;
            rc = store_import_progress(s, j->row.id, &j->p);
        }
    }
    clear_batch(j);
    if (rc != 0)
        return STOP_DB;
    j->invalid_dirty = false;
    return 0;
}

static void add_invalid(struct job *j, long line, const char *why)
{
    j->p.n_invalid++;
    metric_inc(j->im->app->import_invalid);
    if (json_object_array_length(j->invalid) >= IMPORTER_MAX_REPORTED)
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "line", json_object_new_int64(line));
    json_object_object_add(o, "error", json_object_new_string(why));
    json_object_array_add(j->invalid, o);
    j->invalid_dirty = true;
}

static int on_record(void *arg, long line, const char *const *f, size_t nf, const char *err)
{
    struct job *j = arg;
    char why[256];
    if (!j->header_seen) {
        j->header_seen = true;
        if (csvrows_header(&j->hdr, f, nf, err, j->header_err, sizeof j->header_err) != 0)
            return STOP_HEADER;
        return 0;
    }
    if (line <= j->row.resume_at)
        return 0; /* committed before a restart */
    pthread_mutex_lock(&j->im->mu);
    bool stop = j->im->stop;
    pthread_mutex_unlock(&j->im->mu);
    if (stop)
        return STOP_QUIT;
    j->p.rows++;
    j->p.resume_at = line;
    char name[CSV_MAX_FIELD + 1], email[CSV_MAX_FIELD + 1];
    char *attrs = NULL;
    if (csvrows_row(&j->hdr, f, nf, err, name, email, &attrs, why, sizeof why) != 0 ||
        user_input_make(&j->batch[j->n], name, email, why, sizeof why) != 0) {
        free(attrs);
        add_invalid(j, line, why);
        return 0;
    }
    if (j->campaign) { /* no event for a list's recipient */
        user_input_cleanup(&j->batch[j->n]);
    }
    j->attrs[j->n] = attrs;
    j->lines[j->n] = line;
    j->n++;
    return j->n == IMPORTER_BATCH ? flush(j) : 0;
}

static int feed(void *arg, const char *data, size_t len)
{
    struct job *j = arg;
    return csv_feed(j->csv, data, len);
}

/* run - one import to its end (done or failed), or until a stop */
static void run(struct importer *im, struct import_row *row)
{
    struct app *app = im->app;
    struct job *j = xcalloc(1, sizeof *j);
    j->im = im;
    j->row = *row;
    j->campaign = strcmp(row->kind, "campaign") == 0;
    j->csv = csv_new(on_record, j);
    j->p = (struct import_progress){.rows = row->rows,
                                    .imported = row->imported,
                                    .duplicates = row->duplicates,
                                    .n_invalid = row->n_invalid,
                                    .resume_at = row->resume_at};
    j->invalid = json_tokener_parse(row->invalid);
    if (!j->invalid || !json_object_is_type(j->invalid, json_type_array)) {
        json_object_put(j->invalid);
        j->invalid = json_object_new_array();
    }
    char now[32], err[512] = "";
    time_rfc3339_ms(time_now_ms(), now, sizeof now);
    struct upload_row up = {0};
    int rc = store_import_start(app->store, row->id, now);
    if (rc != 0) {
        snprintf(err, sizeof err, "the database failed");
        goto out;
    }
    log_info("import %lld (%s) %s at line %lld", (long long)row->id, row->kind,
             row->resume_at ? "resumes" : "starts", (long long)row->resume_at);
    if (j->campaign) {
        if (!row->upload_id || store_upload_get(app->store, row->upload_id, &up) != 0) {
            snprintf(err, sizeof err, "its upload is gone");
            rc = -1;
            goto out;
        }
        rc = uploads_read(app->uploads, &up, feed, j, err, sizeof err);
    } else {
        rc = uploads_read_file(row->source, feed, j, err, sizeof err);
    }
    if (rc == 0)
        rc = csv_finish(j->csv);
    if (rc == 0)
        rc = flush(j);
out:
    if (rc == STOP_QUIT) {
        log_info("import %lld stopped at line %lld; it resumes at the next start",
                 (long long)row->id, (long long)j->p.resume_at);
    } else {
        const char *state = "done";
        if (rc == STOP_HEADER)
            snprintf(err, sizeof err, "%s", j->header_err);
        else if (rc == STOP_DB)
            snprintf(err, sizeof err, "the database failed");
        else if (rc == 0 && !j->header_seen)
            snprintf(err, sizeof err, "the file is empty: expected the header name,email_id");
        if (rc != 0 || !j->header_seen)
            state = "failed";
        clear_batch(j);
        time_rfc3339_ms(time_now_ms(), now, sizeof now);
        j->p.now = now;
        j->p.invalid = json_object_to_json_string_ext(
            j->invalid, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (store_import_finish(app->store, row->id, state, *state == 'f' ? err : NULL, &j->p) != 0)
            log_error("import %lld: cannot record its end", (long long)row->id);
        log_info("import %lld %s rows=%lld imported=%lld duplicates=%lld invalid=%lld%s%s",
                 (long long)row->id, state, (long long)j->p.rows, (long long)j->p.imported,
                 (long long)j->p.duplicates, (long long)j->p.n_invalid, *err ? " error=" : "", err);
        if (j->campaign && up.id && strcmp(up.backend, "local") == 0)
            uploads_remove_files(app->uploads, up.id);
        else if (!j->campaign)
            unlink(row->source);
    }
    upload_row_cleanup(&up);
    clear_batch(j);
    csvrows_cleanup(&j->hdr);
    csv_free(j->csv);
    json_object_put(j->invalid);
    free(j);
}

#define SWEEP_EVERY_MS (10 * 60 * 1000)

static void *importer_main(void *arg)
{
    struct importer *im = arg;
    int64_t next_sweep = time_mono_ms();
    for (;;) {
        pthread_mutex_lock(&im->mu);
        bool stop = im->stop;
        im->kick = false;
        pthread_mutex_unlock(&im->mu);
        if (stop)
            break;
        struct import_row row = {0};
        int rc = store_import_next(im->app->store, &row);
        if (rc == 0) {
            run(im, &row);
            import_row_cleanup(&row);
            continue;
        }
        if (time_mono_ms() >= next_sweep) { /* idle: expired uploads' parts go */
            uploads_sweep(im->app->uploads);
            next_sweep = time_mono_ms() + SWEEP_EVERY_MS;
        }
        pthread_mutex_lock(&im->mu);
        if (!im->stop && !im->kick) {
            struct timespec ts = time_mono_deadline(rc < 0 ? 1000 : 30000);
            pthread_cond_timedwait(&im->cv, &im->mu, &ts);
        }
        pthread_mutex_unlock(&im->mu);
    }
    return NULL;
}

struct importer *importer_start(struct app *app, char *errbuf, size_t errlen)
{
    struct importer *im = xcalloc(1, sizeof *im);
    im->app = app;
    pthread_mutex_init(&im->mu, NULL);
    time_cond_init_mono(&im->cv);
    if (pthread_create(&im->th, NULL, importer_main, im) != 0) {
        snprintf(errbuf, errlen, "cannot start the importer thread");
        pthread_mutex_destroy(&im->mu);
        pthread_cond_destroy(&im->cv);
        free(im);
        return NULL;
    }
    return im;
}

void importer_notify(struct importer *im)
{
    pthread_mutex_lock(&im->mu);
    im->kick = true;
    pthread_cond_signal(&im->cv);
    pthread_mutex_unlock(&im->mu);
}

void importer_stop(struct importer *im)
{
    if (!im)
        return;
    pthread_mutex_lock(&im->mu);
    im->stop = true;
    pthread_cond_signal(&im->cv);
    pthread_mutex_unlock(&im->mu);
    pthread_join(im->th, NULL);
    pthread_mutex_destroy(&im->mu);
    pthread_cond_destroy(&im->cv);
    free(im);
}
