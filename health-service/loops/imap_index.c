/* imap_index.c - a folder's Message-ID -> UID index (see imap_index.h):
 * an open-addressing hash table (linear probing, backward-shift delete)
 * and the Message-ID header parser.
 *
 * Owns its table; the caller owns the index. Threads: one at a time.
 */
#include "imap_index.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIN_SLOTS 64
#define MAX_VALUE 4096 /* longest unfolded Message-ID field value parsed */

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* imap_index_hash - FNV-1a over the trimmed bytes, then murmur3's
 * finalizer so the low bits (the slot) are well mixed */
uint64_t imap_index_hash(const char *id, size_t len)
{
    while (len > 0 && is_wsp(id[0])) {
        id++;
        len--;
    }
    while (len > 0 && is_wsp(id[len - 1]))
        len--;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

struct imap_index *imap_index_new(size_t cap)
{
    struct imap_index *ix = xcalloc(1, sizeof *ix);
    ix->cap = cap ? cap : IMAP_INDEX_MAX;
    return ix;
}

void imap_index_free(struct imap_index *ix)
{
    if (!ix)
        return;
    free(ix->keys);
    free(ix->uids);
    free(ix);
}

/* clear - no entries, no table */
static void clear(struct imap_index *ix)
{
    free(ix->keys);
    free(ix->uids);
    ix->keys = NULL;
    ix->uids = NULL;
    ix->slots = 0;
    ix->count = 0;
}

bool imap_index_validity(struct imap_index *ix, uint32_t uidvalidity)
{
    if (ix->uidvalidity == uidvalidity)
        return false;
    clear(ix);
    ix->uidvalidity = uidvalidity;
    ix->next_uid = 0;
    ix->since_day = 0;
    ix->floor_uid = 0;
    ix->synced = false;
    return true;
}

/* slot_of - the slot holding h, or the empty slot where it would go */
static size_t slot_of(const struct imap_index *ix, uint64_t h)
{
    size_t mask = ix->slots - 1, i = (size_t)h & mask;
    while (ix->keys[i] != 0 && ix->keys[i] != h)
        i = (i + 1) & mask;
    return i;
}

/* rehash - move every entry into a table of slots slots, keeping only
 * those whose UID is >= floor and (when keep) in keep[0..nkeep) */
static void rehash(struct imap_index *ix, size_t slots, uint32_t floor, const uint32_t *keep,
                   size_t nkeep)
{
    uint64_t *okeys = ix->keys;
    uint32_t *ouids = ix->uids;
    size_t oslots = ix->slots;

    ix->keys = xcalloc(slots, sizeof *ix->keys);
    ix->uids = xcalloc(slots, sizeof *ix->uids);
    ix->slots = slots;
    ix->count = 0;
    for (size_t i = 0; i < oslots; i++) {
        if (okeys[i] == 0 || ouids[i] < floor)
            continue;
        if (keep) {
            size_t lo = 0, hi = nkeep;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (keep[mid] < ouids[i])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == nkeep || keep[lo] != ouids[i])
                continue;
        }
        size_t j = slot_of(ix, okeys[i]);
        ix->keys[j] = okeys[i];
        ix->uids[j] = ouids[i];
        ix->count++;
    }
    free(okeys);
    free(ouids);
}

/* evict_old - at the cap: drop the lower half of the UID range until at
 * most three quarters of cap remain */
static void evict_old(struct imap_index *ix)
{
    while (ix->count > 0 && ix->count >= ix->cap - ix->cap / 4) {
        uint32_t lo = UINT32_MAX, hi = 0;
        for (size_t i = 0; i < ix->slots; i++) {
            if (ix->keys[i] == 0)
                continue;
            lo = ix->uids[i] < lo ? ix->uids[i] : lo;
            hi = ix->uids[i] > hi ? ix->uids[i] : hi;
        }
        uint32_t floor = lo + (hi - lo) / 2;
        if (floor <= lo)
            floor = lo + 1; /* at least the oldest goes */
        rehash(ix, ix->slots, floor, NULL, 0);
        if (floor > ix->floor_uid)
            ix->floor_uid = floor;
    }
}

void imap_index_put(struct imap_index *ix, uint64_t h, uint32_t uid)
{
    if (h == 0 || uid == 0)
        return;
    if (ix->slots) {
        size_t i = slot_of(ix, h);
        if (ix->keys[i] == h) {
            if (uid > ix->uids[i])
                ix->uids[i] = uid;
            return;
        }
    }
    if (ix->count + 1 >= ix->cap)
        evict_old(ix);
    if ((ix->count + 1) * 2 > ix->slots)
        rehash(ix, ix->slots ? ix->slots * 2 : MIN_SLOTS, 0, NULL, 0);
    size_t i = slot_of(ix, h);
    ix->keys[i] = h;
    ix->uids[i] = uid;
    ix->count++;
}

uint32_t imap_index_get(const struct imap_index *ix, uint64_t h)
{
    if (!ix || ix->slots == 0 || h == 0)
        return 0;
    size_t i = slot_of(ix, h);
    return ix->keys[i] == h ? ix->uids[i] : 0;
}

bool imap_index_remove(struct imap_index *ix, uint64_t h, uint32_t uid)
{
    if (ix->slots == 0 || h == 0)
        return false;
    size_t mask = ix->slots - 1, i = slot_of(ix, h);
    if (ix->keys[i] != h || (uid && ix->uids[i] != uid))
        return false;
    /* backward shift: pull later entries of the run into the hole */
    for (size_t j = (i + 1) & mask; ix->keys[j] != 0; j = (j + 1) & mask) {
        size_t home = (size_t)ix->keys[j] & mask;
        /* j may move to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        ix->keys[i] = ix->keys[j];
        ix->uids[i] = ix->uids[j];
        i = j;
    }
    ix->keys[i] = 0;
    ix->uids[i] = 0;
    ix->count--;
    return true;
}

size_t imap_index_count(const struct imap_index *ix)
{
    return ix ? ix->count : 0;
}

size_t imap_index_retain(struct imap_index *ix, const uint32_t *uids, size_t n)
{
    size_t before = ix->count;
    if (ix->slots)
        rehash(ix, ix->slots, 0, uids ? uids : (const uint32_t[]){0}, uids ? n : 0);
    return before - ix->count;
}

/* ---- the Message-ID header --------------------------------------------- */

/* field_is - the field line at p (up to end) is named name (any case,
 * blanks before the colon allowed); *value the byte after the colon */
static bool field_is(const char *p, const char *end, const char *name, const char **value)
{
    size_t n = strlen(name);
    if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0)
        return false;
    p += n;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p != ':')
        return false;
    *value = p + 1;
    return true;
}

int imap_index_message_id(const char *hdr, size_t len, char *out, size_t outlen)
{
    const char *p = hdr, *end = hdr + len, *v = NULL;
    char val[MAX_VALUE];
    size_t vn = 0;

    /* find the field: at a line start that is no continuation */
    while (p < end) {
        if (*p != ' ' && *p != '\t' && field_is(p, end, "Message-ID", &v))
            break;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    if (!v)
        return -1;
    /* the value with its continuation lines, line breaks removed */
    for (p = v; p < end; p++) {
        if (*p == '\r' || *p == '\n') {
            const char *q = p;
            while (q < end && (*q == '\r' || *q == '\n') && q - p < 2)
                q++;
            if (q == end || (*q != ' ' && *q != '\t'))
                break; /* the next field (or the end) */
            p = q - 1;
            continue;
        }
        if (vn == sizeof val)
            return -1;
        val[vn++] = *p;
    }
    const char *s = val, *e = val + vn;
    const char *lt = memchr(s, '<', vn);
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(e - lt));
        if (!gt)
            return -1;
        s = lt;
        e = gt + 1;
    } else {
        while (s < e && is_wsp(*s))
            s++;
        while (e > s && is_wsp(e[-1]))
            e--;
    }
    size_t n = (size_t)(e - s);
    if (n == 0 || n > IMAP_INDEX_MAX_ID || n + 1 > outlen)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return (int)n;
}
