/* imap_index.h - a folder's Message-ID -> UID index for the IMAP
 * FeedbackLoop (pure C: no libetpan, no I/O).
 *
 * The loop reads each folder's Message-ID headers once (the first sync, then
 * only the UIDs the server assigned since) and keeps them here, so a round
 * matches any number of copies without a search per copy. Keys are a 64-bit
 * hash of the Message-ID (imap_index_hash: the exact bytes, angle brackets
 * included, surrounding whitespace trimmed, case-sensitive); one UID per key
 * (the highest seen: a duplicate delivery keeps the newest). A hash
 * collision (about 1 in 10^7 for a million entries) can only make a copy
 * look found where another message is: accepted.
 *
 * Memory: open addressing, 12 bytes per slot, at most half full; at most
 * cap entries (IMAP_INDEX_MAX by default, about 24 MB). When full, the
 * entries with the lower half of the UID range (the oldest mail) are
 * dropped and floor_uid remembers where the index then starts: a copy
 * whose message is older than that reads as not found.
 *
 * Ownership: the caller owns the index (imap_index_new / imap_index_free).
 * The state fields (uidvalidity .. synced) are the caller's to read and
 * set; the table is private. Threads: one at a time (the loop's).
 */
#ifndef IMAP_INDEX_H
#define IMAP_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_INDEX_MAX 1000000 /* entries per folder by default */
#define IMAP_INDEX_MAX_ID 998  /* longest Message-ID kept (RFC 5322 line) */

struct imap_index {
    uint32_t uidvalidity; /* the folder's UIDVALIDITY the entries belong to */
    uint32_t next_uid;    /* synced: first UID not read yet */
    int64_t since_day;    /* synced: mail received since this day is read
                           * (days since 1970-01-01; <= 0: all of it) */
    uint32_t floor_uid;   /* entries below this UID were dropped (cap) */
    bool synced;          /* the first read of the folder is done */
    /* private */
    uint64_t *keys; /* 0: empty slot */
    uint32_t *uids;
    size_t slots; /* a power of two, or 0 */
    size_t count;
    size_t cap;
};

/* imap_index_new - an empty index holding at most cap entries (0:
 * IMAP_INDEX_MAX); free with imap_index_free */
struct imap_index *imap_index_new(size_t cap);
/* imap_index_free - NULL is a no-op */
void imap_index_free(struct imap_index *ix);

/* imap_index_hash - the key of Message-ID id[0..len) (whitespace around it
 * trimmed); never 0 */
uint64_t imap_index_hash(const char *id, size_t len);

/* imap_index_validity - the folder has this UIDVALIDITY: when it differs
 * from the index's, empty the index and clear its state (true) */
bool imap_index_validity(struct imap_index *ix, uint32_t uidvalidity);

/* imap_index_put - remember that the message with key h has UID uid (uid >
 * 0; the higher UID wins for a key already there). At the cap, the older
 * half is dropped first (floor_uid). */
void imap_index_put(struct imap_index *ix, uint64_t h, uint32_t uid);
/* imap_index_get - the UID for key h, 0 when absent */
uint32_t imap_index_get(const struct imap_index *ix, uint64_t h);
/* imap_index_remove - forget key h if it maps to uid (0: whatever UID);
 * true when an entry went */
bool imap_index_remove(struct imap_index *ix, uint64_t h, uint32_t uid);
/* imap_index_count - entries held */
size_t imap_index_count(const struct imap_index *ix);
/* imap_index_retain - keep only the entries whose UID is in uids[0..n)
 * (sorted ascending); the number dropped */
size_t imap_index_retain(struct imap_index *ix, const uint32_t *uids, size_t n);

/* imap_index_message_id - the Message-ID in a header block (the answer to
 * BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]: field lines, maybe folded, any
 * case for the name, CRLF or LF): the bytes from '<' to the next '>', or
 * the trimmed value when it has no '<', unfolded, into out (NUL-ended).
 * Its length, or -1 when there is no Message-ID field, the value is empty
 * or longer than IMAP_INDEX_MAX_ID or outlen - 1 */
int imap_index_message_id(const char *hdr, size_t len, char *out, size_t outlen);

#endif
