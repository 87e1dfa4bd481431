/* test_imap_index.c - the IMAP loop's folder index (health-service/loops/
 * imap_index.c): insert and lookup, duplicates, UIDVALIDITY reset, the cap
 * and its floor, removal (compared with a plain array after random
 * operations), pruning to the UIDs a folder still has, odd Message-IDs, and
 * the Message-ID header parser (folded, any case, missing, malformed). */
#include "imap_index.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>

static uint64_t H(const char *s)
{
    return imap_index_hash(s, strlen(s));
}

static void test_put_get(void)
{
    struct imap_index *ix = imap_index_new(0);
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 0, "empty index: nothing found");
    imap_index_put(ix, H("<a@x>"), 7);
    imap_index_put(ix, H("<b@x>"), 9);
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 7, "a -> 7");
    CHECK_INT(imap_index_get(ix, H("<b@x>")), 9, "b -> 9");
    CHECK_INT(imap_index_get(ix, H("<c@x>")), 0, "c absent");
    imap_index_put(ix, H("<a@x>"), 12);
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 12, "a duplicate delivered later: the newer UID");
    imap_index_put(ix, H("<a@x>"), 3);
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 12, "an older UID does not replace a newer one");
    CHECK_INT(imap_index_count(ix), 2, "2 entries");
    imap_index_put(ix, H("<z@x>"), 0);
    CHECK_INT(imap_index_count(ix), 2, "UID 0 is never stored");
    /* many entries: the table grows and keeps them all */
    char id[64];
    for (uint32_t i = 1; i <= 50000; i++) {
        snprintf(id, sizeof id, "<email-%u.abc@d.test>", i);
        imap_index_put(ix, H(id), 100 + i);
    }
    int bad = 0;
    for (uint32_t i = 1; i <= 50000; i++) {
        snprintf(id, sizeof id, "<email-%u.abc@d.test>", i);
        bad += imap_index_get(ix, H(id)) != 100 + i;
    }
    CHECK_INT(bad, 0, "50,000 entries: each found with its UID");
    CHECK_INT(imap_index_count(ix), 50002, "count 50,002");
    CHECK(ix->slots >= 2 * ix->count, "the table is at most half full");
    imap_index_free(ix);
    imap_index_free(NULL);
}

static void test_hash(void)
{
    CHECK(H("<a@x>") == H("  <a@x>\r\n"), "whitespace around the id is trimmed");
    CHECK(H("<a@x>") != H("<A@x>"), "case-sensitive");
    CHECK(H("<a@x>") != H("a@x"), "the brackets are part of the key");
    CHECK(H("") != 0 && H("   ") == H(""), "empty id: a key (never 0), blanks trimmed");
    static const char *const odd[] = {
        "<a b@x>",
        "<\"quoted\"@x>",
        "<a@[127.0.0.1]>",
        "<\xc3\xa9t\xc3\xa9@x>",
        "<a@x><b@x>",
        "<>",
        "<<a@x>>",
        "<a@x",
        "a@x>",
        "<a\tb@x>",
    };
    size_t n = sizeof odd / sizeof odd[0];
    struct imap_index *ix = imap_index_new(0);
    for (size_t i = 0; i < n; i++)
        imap_index_put(ix, H(odd[i]), (uint32_t)i + 1);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += imap_index_get(ix, H(odd[i])) != (uint32_t)i + 1;
    CHECK_INT(bad, 0,
              "odd Message-IDs (spaces, quotes, literals, UTF-8, nested) are distinct keys");
    CHECK_INT(imap_index_count(ix), n, "one entry each");
    imap_index_free(ix);
}

static void test_validity(void)
{
    struct imap_index *ix = imap_index_new(0);
    CHECK(imap_index_validity(ix, 1000), "a new index takes the folder's UIDVALIDITY (reset)");
    imap_index_put(ix, H("<a@x>"), 5);
    ix->synced = true;
    ix->next_uid = 6;
    ix->since_day = 20000;
    CHECK(!imap_index_validity(ix, 1000), "same UIDVALIDITY: kept");
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 5, "... with its entries");
    CHECK(imap_index_validity(ix, 1001), "UIDVALIDITY changed: reset");
    CHECK_INT(imap_index_count(ix), 0, "reset: no entry left");
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 0, "reset: a no longer found");
    CHECK(!ix->synced && ix->next_uid == 0 && ix->since_day == 0, "reset: not synced");
    CHECK_INT(ix->uidvalidity, 1001, "reset: the new UIDVALIDITY");
    imap_index_put(ix, H("<a@x>"), 1);
    CHECK_INT(imap_index_get(ix, H("<a@x>")), 1, "usable after a reset");
    imap_index_free(ix);
}

static void test_cap(void)
{
    struct imap_index *ix = imap_index_new(1000);
    char id[64];
    for (uint32_t i = 1; i <= 5000; i++) {
        snprintf(id, sizeof id, "<m%u@x>", i);
        imap_index_put(ix, H(id), i);
        if (imap_index_count(ix) > 1000)
            break;
    }
    CHECK(imap_index_count(ix) <= 1000, "never more entries than the cap");
    CHECK(imap_index_count(ix) >= 500, "the cap keeps at least half of the entries");
    CHECK(ix->floor_uid > 4000, "floor_uid: the oldest mail went");
    int newest = 0, oldest = 0;
    for (uint32_t i = 4991; i <= 5000; i++) {
        snprintf(id, sizeof id, "<m%u@x>", i);
        newest += imap_index_get(ix, H(id)) == i;
    }
    for (uint32_t i = 1; i <= 10; i++) {
        snprintf(id, sizeof id, "<m%u@x>", i);
        oldest += imap_index_get(ix, H(id)) != 0;
    }
    CHECK_INT(newest, 10, "the 10 newest are kept");
    CHECK_INT(oldest, 0, "the 10 oldest are dropped");
    int below = 0;
    for (uint32_t i = 1; i <= 5000; i++) {
        snprintf(id, sizeof id, "<m%u@x>", i);
        uint32_t u = imap_index_get(ix, H(id));
        below += u != 0 && u < ix->floor_uid;
    }
    CHECK_INT(below, 0, "no entry below floor_uid");
    imap_index_free(ix);
}

/* test_remove - random puts and removes against a plain array */
static void test_remove(void)
{
    enum { N = 4000 };
    static uint32_t want[N];
    struct imap_index *ix = imap_index_new(0);
    char id[64];
    unsigned seed = 12345;
    size_t live = 0;
    int wrong = 0;
    for (int op = 0; op < 60000; op++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t k = (seed >> 8) % N;
        snprintf(id, sizeof id, "<r%u@x>", k);
        if ((seed >> 4) & 1) {
            live += want[k] == 0;
            uint32_t u = (uint32_t)op + 1;
            imap_index_put(ix, H(id), u);
            want[k] = u;
        } else {
            bool had = want[k] != 0;
            wrong += imap_index_remove(ix, H(id), 0) != had;
            live -= had;
            want[k] = 0;
        }
    }
    CHECK_INT(wrong, 0, "each remove reports whether the key was there");
    int bad = 0;
    for (uint32_t k = 0; k < N; k++) {
        snprintf(id, sizeof id, "<r%u@x>", k);
        bad += imap_index_get(ix, H(id)) != want[k];
    }
    CHECK_INT(bad, 0, "60,000 random puts and removes: every key as in a plain array");
    CHECK_INT(imap_index_count(ix), live, "count matches");
    imap_index_put(ix, H("<q@x>"), 5);
    CHECK(!imap_index_remove(ix, H("<q@x>"), 6), "remove with another UID: kept");
    CHECK_INT(imap_index_get(ix, H("<q@x>")), 5, "... still there");
    CHECK(imap_index_remove(ix, H("<q@x>"), 5), "remove with its UID: gone");
    CHECK(!imap_index_remove(ix, H("<q@x>"), 0), "removing again: nothing");
    imap_index_free(ix);
}

static void test_retain(void)
{
    struct imap_index *ix = imap_index_new(0);
    char id[64];
    for (uint32_t i = 1; i <= 100; i++) {
        snprintf(id, sizeof id, "<p%u@x>", i);
        imap_index_put(ix, H(id), i);
    }
    uint32_t still[] = {2, 3, 50, 99, 100, 200};
    CHECK_INT(imap_index_retain(ix, still, sizeof still / sizeof still[0]), 95,
              "retain: 95 UIDs the folder no longer has are dropped");
    CHECK_INT(imap_index_count(ix), 5, "5 left");
    CHECK_INT(imap_index_get(ix, H("<p50@x>")), 50, "p50 kept");
    CHECK_INT(imap_index_get(ix, H("<p51@x>")), 0, "p51 dropped");
    CHECK_INT(imap_index_retain(ix, NULL, 0), 5, "retain nothing (empty folder): all dropped");
    CHECK_INT(imap_index_count(ix), 0, "empty");
    imap_index_free(ix);
}

static void test_parse(void)
{
    static const struct {
        const char *name, *hdr, *want; /* want NULL: -1 */
    } rows[] = {
        {"plain", "Message-ID: <a@x>\r\n\r\n", "<a@x>"},
        {"lower case name", "message-id: <a@x>\r\n\r\n", "<a@x>"},
        {"upper case name", "MESSAGE-ID:<a@x>\r\n", "<a@x>"},
        {"blank before the colon", "Message-ID  : <a@x>\r\n", "<a@x>"},
        {"folded after the colon", "Message-ID:\r\n <a@x>\r\n\r\n", "<a@x>"},
        {"folded with a tab, LF only", "Message-Id:\n\t<a@x>\n\n", "<a@x>"},
        {"folded twice", "Message-ID:\r\n \r\n  <a@x>\r\n", "<a@x>"},
        {"comment after", "Message-ID: <a@x> (added by relay)\r\n", "<a@x>"},
        {"no line end", "Message-ID: <a@x>", "<a@x>"},
        {"another field first", "X-Other: y\r\nMessage-ID: <b@x>\r\n", "<b@x>"},
        {"a continuation line looking like the field",
         "X-Other: y\r\n Message-ID: <no@x>\r\nMessage-ID: <b@x>\r\n", "<b@x>"},
        {"Resent-Message-ID is not it", "Resent-Message-ID: <r@x>\r\n\r\n", NULL},
        {"Message-IDX is not it", "Message-IDX: <r@x>\r\n", NULL},
        {"the first of two", "Message-ID: <1@x>\r\nMessage-ID: <2@x>\r\n", "<1@x>"},
        {"no brackets: trimmed value", "Message-ID:   bare@x  \r\n", "bare@x"},
        {"missing", "\r\n", NULL},
        {"empty block", "", NULL},
        {"empty value", "Message-ID:   \r\n\r\n", NULL},
        {"no closing bracket", "Message-ID: <a@x\r\n", NULL},
        {"no colon", "Message-ID <a@x>\r\n", NULL},
    };
    char out[IMAP_INDEX_MAX_ID + 1];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int n = imap_index_message_id(rows[i].hdr, strlen(rows[i].hdr), out, sizeof out);
        char name[160];
        snprintf(name, sizeof name, "header: %s", rows[i].name);
        if (!rows[i].want) {
            CHECK_INT(n, -1, name);
        } else {
            CHECK(n == (int)strlen(rows[i].want) && strcmp(out, rows[i].want) == 0, name);
            if (n < 0 || strcmp(out, rows[i].want) != 0)
                printf("#   got %d '%s', want '%s'\n", n, n < 0 ? "" : out, rows[i].want);
        }
    }
    /* a long id: at the limit, and over it */
    char hdr[1200], id[1100];
    memset(id, 'a', sizeof id);
    id[0] = '<';
    id[IMAP_INDEX_MAX_ID - 1] = '>';
    id[IMAP_INDEX_MAX_ID] = '\0';
    snprintf(hdr, sizeof hdr, "Message-ID: %s\r\n", id);
    CHECK_INT(imap_index_message_id(hdr, strlen(hdr), out, sizeof out), IMAP_INDEX_MAX_ID,
              "a 998-byte id is parsed");
    id[IMAP_INDEX_MAX_ID - 1] = 'a';
    id[IMAP_INDEX_MAX_ID] = '>';
    id[IMAP_INDEX_MAX_ID + 1] = '\0';
    snprintf(hdr, sizeof hdr, "Message-ID: %s\r\n", id);
    CHECK_INT(imap_index_message_id(hdr, strlen(hdr), out, sizeof out), -1,
              "a 999-byte id is refused");
    char small[4];
    CHECK_INT(imap_index_message_id("Message-ID: <a@x>\r\n", 19, small, sizeof small), -1,
              "an output buffer too small: refused");
    /* the length is honoured: no read past len */
    const char *cut = "Message-ID: <a@x>trailing";
    CHECK_INT(imap_index_message_id(cut, 14, out, sizeof out), -1, "cut before '>': refused");
    /* the parsed id and the copy's id hash alike */
    int n = imap_index_message_id("message-id:\r\n\t<email-1.9f@d.test>\r\n", 35, out, sizeof out);
    CHECK(n > 0 && imap_index_hash(out, (size_t)n) == H("<email-1.9f@d.test>"),
          "a folded header's id has the copy's key");
}

int main(void)
{
    test_put_get();
    test_hash();
    test_validity();
    test_cap();
    test_remove();
    test_retain();
    test_parse();
    return test_done();
}
