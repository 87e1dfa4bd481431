/* test_seeds.c - SEED_MAILBOXES_FILE (health-service/seeds.c): good
 * entries become IMAP loop instances (no connection is made: creating a
 * loop only checks its settings); each bad entry (not an object, no or an
 * invalid address, a duplicate, an unknown key, no imap object, a setting
 * the loop refuses, engage not an object) is kept with its own error and
 * named by its address (or its position) while the others work; a file
 * that is not a JSON array, unreadable or empty is refused and leaves the
 * set as it was; addresses are lower-cased and found without case in a
 * sorted snapshot; a reload keeps the instance of an unchanged entry,
 * makes a changed one afresh and drops a removed one only after the
 * snapshot holding it is released; seeds_report keeps the status,
 * counts, and says when a failure is news; no password in any error. */
#include "seeds.h"
#include "log.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_seeds.XXXXXX";
static char path[256];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

#define IMAP(user)                                                                                 \
    "{\"host\":\"127.0.0.1\",\"tls\":\"none\",\"user\":\"" user "\",\"password\":\"S3cret-pw\"}"

/* status - the listed status of address, or NULL (the array is freed by
 * the caller through *all) */
static const struct seed_status *status(struct seed_status *v, size_t n, const char *address)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].address, address) == 0)
            return &v[i];
    return NULL;
}

static bool error_has(struct seed_status *v, size_t n, const char *address, const char *part)
{
    const struct seed_status *s = status(v, n, address);
    return s && !s->ok && s->last_error && strstr(s->last_error, part) &&
           !strstr(s->last_error, "S3cret-pw");
}

int main(void)
{
    char err[512];
    size_t bad = 99, n;
    struct seed_status *v;
    log_init(LOG_ERROR, LOG_TEXT, "test_seeds");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/seeds.json", dir);
    struct seeds *s = seeds_new();

    /* ---- the first load --------------------------------------------- */
    write_file("[{\"address\":\"Alice@Gmail.Test\",\"imap\":" IMAP(
        "alice") "},"
                 "{\"address\":\"bob@gmail.test\",\"imap\":" IMAP(
                     "bob") ","
                            "\"engage\":{\"rescue\":true,\"mark_read\":true}},"
                            "{\"address\":\"carol@yahoo.test\",\"imap\":" IMAP(
                                "carol") "},"
                                         "42,"
                                         "{\"imap\":" IMAP(
                                             "x") "},"
                                                  "{\"address\":\"not-an-address\",\"imap\":" IMAP(
                                                      "x") "},"
                                                           "{\"address\":\"alice@gmail.test\","
                                                           "\"imap\":" IMAP(
                                                               "dup") "},"
                                                                      "{\"address\":\"k@x.test\","
                                                                      "\"imap\":" IMAP(
                                                                          "k") ",\"colour\":1},"
                                                                               "{\"address\":"
                                                                               "\"noimap@x.test\"},"
                                                                               "{\"address\":"
                                                                               "\"nohost@x.test\","
                                                                               "\"imap\":{\"user\":"
                                                                               "\"u\",\"password\":"
                                                                               "\"S3cret-pw\"}},"
                                                                               "{\"address\":"
                                                                               "\"engage@x.test\","
                                                                               "\"imap\":" IMAP(
                                                                                   "e") ",\"engage"
                                                                                        "\":[1]},"
                                                                                        "{\"address"
                                                                                        "\":"
                                                                                        "\"badengag"
                                                                                        "e@x."
                                                                                        "test\","
                                                                                        "\"imap\""
                                                                                        ":" IMAP(
                                                                                            "e") ","
                                                                                                 "\"engage\":{\"dance\":true}}]");
    CHECK(seeds_load(s, path, &bad, err, sizeof err) == 0,
          "a file with good and bad entries loads");
    CHECK_INT(seeds_count(s), 12, "every entry is listed, bad ones too");
    CHECK_INT(bad, 9, "9 bad entries counted");
    seeds_list(s, &v, &n);
    CHECK_STR(v[0].address, "alice@gmail.test", "addresses lower-cased, listed in file order");
    CHECK(v[0].ok && !v[0].last_error && !v[0].has_round, "a good entry is ok before any round");
    CHECK(status(v, n, "bob@gmail.test")->ok, "engage with rescue and mark_read is accepted");
    CHECK(error_has(v, n, "entry 4", "object"),
          "an entry that is not an object: named by position");
    CHECK(error_has(v, n, "entry 5", "address"), "no address: named by position, naming the field");
    CHECK(error_has(v, n, "entry 6", "address"), "an invalid address: the reason names the field");
    CHECK(n > 6 && strcmp(v[6].address, "alice@gmail.test") == 0 && !v[6].ok &&
              strstr(v[6].last_error, "duplicate address (also entry 1)"),
          "a duplicate address is an error of the later entry");
    CHECK(v[0].ok, "... and the first entry for that address stays ok");
    CHECK(error_has(v, n, "k@x.test", "colour"), "an unknown key is named");
    CHECK(error_has(v, n, "noimap@x.test", "imap"), "no imap object: named");
    CHECK(error_has(v, n, "nohost@x.test", "host"), "the loop's own check names the missing host");
    CHECK(error_has(v, n, "engage@x.test", "engage"), "engage not an object: named");
    CHECK(error_has(v, n, "badengage@x.test", "dance"), "an unknown engage key: named");
    seeds_status_free(v, n);

    /* ---- the snapshot and lookups ------------------------------------ */
    size_t ns;
    struct seed **snap = seeds_snapshot(s, &ns);
    CHECK_INT(ns, 12, "the snapshot holds every mailbox");
    bool sorted = true;
    for (size_t i = 1; i < ns; i++)
        sorted &= strcmp(snap[i - 1]->address, snap[i]->address) <= 0;
    CHECK(sorted, "the snapshot is sorted by address");
    size_t a = seeds_find(snap, ns, "ALICE@gmail.TEST");
    CHECK(a < ns && strcmp(snap[a]->address, "alice@gmail.test") == 0 && snap[a]->slot.ops &&
              snap[a]->slot.loop,
          "found without case, with its loop instance");
    CHECK_STR(snap[a]->domain, "gmail.test", "its domain");
    CHECK_INT(seeds_find(snap, ns, "zed@gmail.test"), ns, "an address without a mailbox: n");
    size_t k = seeds_find(snap, ns, "nohost@x.test");
    CHECK(k < ns && !snap[k]->slot.ops && !snap[k]->slot.loop, "a bad entry has no instance");
    void *alice_loop = snap[a]->slot.loop, *bob_loop = NULL;
    size_t b = seeds_find(snap, ns, "bob@gmail.test");
    bob_loop = snap[b]->slot.loop;
    struct seed *carol = snap[seeds_find(snap, ns, "carol@yahoo.test")];

    /* ---- status ------------------------------------------------------- */
    CHECK(!seeds_report(s, snap[a], 1000, NULL, 3, 1), "a first round that ran is no news");
    CHECK(seeds_report(s, snap[a], 2000, "LOGIN failed", 0, 0), "a first failure is news");
    CHECK(!seeds_report(s, snap[a], 3000, "LOGIN failed", 0, 0), "the same failure again is not");
    CHECK(seeds_report(s, snap[a], 4000, "connect refused", 0, 0), "another error is news");
    seeds_list(s, &v, &n);
    CHECK(!v[0].ok && strcmp(v[0].last_error, "connect refused") == 0 && v[0].last_round_at == 4000,
          "a failing mailbox: error with its last error and round time");
    seeds_status_free(v, n);
    CHECK(seeds_report(s, snap[a], 5000, NULL, 2, 1), "recovering is news");
    seeds_list(s, &v, &n);
    CHECK(v[0].ok && !v[0].last_error && v[0].checked == 5 && v[0].rescued == 2,
          "recovered: ok, no error, checked and rescued summed");
    seeds_status_free(v, n);

    /* ---- a bad file keeps the set --------------------------------------- */
    write_file("{\"address\":\"a@b.test\"}");
    CHECK(seeds_load(s, path, NULL, err, sizeof err) == -1 && strstr(err, "SEED_MAILBOXES_FILE") &&
              strstr(err, "array"),
          "a file that is not an array is refused, naming the variable");
    write_file("[{\"address\":");
    CHECK(seeds_load(s, path, NULL, err, sizeof err) == -1, "malformed JSON is refused");
    CHECK(seeds_load(s, "/nonexistent/seeds.json", NULL, err, sizeof err) == -1 &&
              strstr(err, "SEED_MAILBOXES_FILE"),
          "an unreadable file is refused, naming the variable");
    CHECK_INT(seeds_count(s), 12, "... and the set stays as it was");

    /* ---- a reload: alice unchanged, bob changed, carol removed ---------- */
    /* the same text as before for alice (a change of case is a change) */
    static const char reload[] = "[{\"address\":\"Alice@Gmail.Test\",\"imap\":" IMAP(
        "alice") "},"
                 "{\"address\":\"bob@gmail.test\",\"imap\":" IMAP(
                     "bob2") "},"
                             "{\"address\":\"dave@gmail.test\",\"imap\":" IMAP("dave") "}]";
    write_file(reload);
    CHECK(seeds_load(s, path, &bad, err, sizeof err) == 0 && bad == 0, "the reload loads");
    size_t ns2;
    struct seed **snap2 = seeds_snapshot(s, &ns2);
    CHECK_INT(ns2, 3, "three mailboxes now");
    size_t a2 = seeds_find(snap2, ns2, "alice@gmail.test"),
           b2 = seeds_find(snap2, ns2, "bob@gmail.test");
    CHECK(a2 < ns2 && snap2[a2]->slot.loop == alice_loop,
          "the unchanged entry keeps its instance (connection, indexes)");
    CHECK(b2 < ns2 && snap2[b2]->slot.loop && snap2[b2]->slot.loop != bob_loop,
          "the changed entry gets a new instance");
    CHECK_INT(seeds_find(snap2, ns2, "carol@yahoo.test"), ns2, "the removed entry is gone");
    seeds_list(s, &v, &n);
    CHECK(status(v, n, "alice@gmail.test")->checked == 5, "the kept mailbox keeps its counts");
    seeds_status_free(v, n);
    /* carol (removed) is still usable through the old snapshot */
    CHECK_STR(carol->address, "carol@yahoo.test",
              "a removed mailbox lives while a snapshot holds it");
    seeds_report(s, carol, 6000, NULL, 1, 0);
    seeds_snapshot_free(s, snap, ns);
    seeds_snapshot_free(s, snap2, ns2);

    /* ---- an empty list -------------------------------------------------- */
    write_file("[]");
    CHECK(seeds_load(s, path, &bad, err, sizeof err) == 0 && seeds_count(s) == 0,
          "an empty list: no seed mailboxes");
    seeds_free(s);
    seeds_free(NULL);
    unlink(path);
    rmdir(dir);
    return test_done();
}
