/* loop_imap_int.h - private to the IMAP FeedbackLoop: what its three
 * pieces share, and nothing else includes. loop_imap.c runs the rounds and
 * owns create/destroy, loop_imap_folder.c does a folder's part of a round
 * (with its index, imap_index.c), loop_imap_settings.c parses the JSON
 * settings, loop_imap_conn.c opens and closes the connection.
 *
 * struct imap_loop is allocated and freed (every field, also after a
 * half-done imap_parse_settings) by loop_imap.c; the settings fields are
 * filled by loop_imap_settings.c; the session fields (imap, spam) are set
 * by imap_session_open and cleared by imap_session_close.
 * Threads: an instance is used by one thread at a time.
 */
#ifndef LOOP_IMAP_INT_H
#define LOOP_IMAP_INT_H

#include "feedback_loop.h"

#include <libetpan/libetpan.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_tls { IMAP_TLS_NONE = 0, IMAP_TLS_STARTTLS, IMAP_TLS_IMPLICIT };
/* imap_tls_names - the "tls" setting's words by enum imap_tls, NULL-ended */
extern const char *const imap_tls_names[];

struct imap_index; /* a folder's Message-ID -> UID index (imap_index.h) */

/* a secret file as it was read (stat before the read): a refresher's
 * rewrite changes one of these */
struct imap_secret_id {
    bool known;
    uint64_t dev, ino;
    int64_t size, mtime_s, mtime_ns;
};

struct imap_loop {
    char *domain; /* the domain, or the seed mailbox's address */
    char *host;
    uint16_t port;
    enum imap_tls tls;
    char *user;
    char *password;          /* secret: never logged, wiped on destroy */
    char *password_file;     /* NULL, or the password's file: re-read at each connect */
    char *oauth2_token_file; /* NULL, or SASL XOAUTH2 with the token in this
                              * file (re-read at each connect: an external
                              * refresher rewrites it) instead of LOGIN */
    char *inbox;
    char *spam_conf; /* the "spam" setting, NULL: discover */
    char *ca_file;   /* NULL: system trust store */
    int timeout_ms;
    bool host_is_ip;
    X509_STORE *store; /* trust anchors, loaded at create time */
    /* "engage": what a round does to the copies it finds; any of them
     * opens the folders read-write (SELECT), else read-only (EXAMINE) */
    bool engage_rescue;    /* move a copy found in spam to the inbox */
    bool engage_mark_read; /* set \Seen */
    bool engage_flag;      /* set \Flagged */

    mailimap *imap;      /* NULL while disconnected */
    char *spam;          /* spam folder of this connection */
    bool cap_move;       /* this connection's server offers MOVE (RFC 6851) */
    bool cap_uidplus;    /* ... and UIDPLUS (UID EXPUNGE, RFC 4315) */
    bool warned_no_move; /* this connection: "cannot rescue" logged */
    bool auth_failed;    /* the last connect attempt was refused at LOGIN or
                          * AUTHENTICATE, or could not read its secret file
                          * (loop_imap_conn.c) */
    /* the secret file as read for that attempt */
    struct imap_secret_id secret_id;
    int64_t backoff_ms;  /* 0 after a good round */
    int64_t retry_at_ms; /* monotonic: no connect attempt before */
    char last_err[256];  /* why the last connect/round failed */
    /* kept across connections (checked against UIDVALIDITY) */
    struct imap_index *ix_inbox, *ix_spam;
};

/* ---- the round (loop_imap.c, loop_imap_folder.c) ---------------------- */

/* one round's copies, as both folders see them */
#define IMAP_CK_INBOX 1u /* the inbox was read for the copy */
#define IMAP_CK_SPAM 2u  /* the spam folder was read for the copy */
struct imap_round {
    struct fl_copy *copies;
    size_t n;
    uint64_t *keys;    /* per copy: imap_index_hash of its Message-ID, 0:
                        * unsearchable (stays FL_UNKNOWN) */
    unsigned char *ck; /* per copy: IMAP_CK_* bits */
    int64_t since_day; /* the day before the oldest copy was sent (days
                        * since 1970-01-01; <= 0: all mail) */
    /* actions taken */
    size_t rescued, marked_read, flagged;
};

/* imap_folder_round - the inbox's (where FL_INBOX) or the spam folder's
 * part of round r: open it (SELECT or EXAMINE), update its index, set
 * placement/opened/read/rescued of the copies found there, engage. -1 on a
 * connection error, -2 when the folder cannot be opened (err set for
 * both); 0 otherwise */
int imap_folder_round(struct imap_loop *l, enum fl_placement where, struct imap_round *r, char *err,
                      size_t errlen);

/* imap_count_command - count one libetpan command call (any command: LOGIN,
 * AUTHENTICATE, CAPABILITY, LIST, STARTTLS, LOGOUT ...) in the process-wide
 * counter behind loop_imap_commands(); call it once per mailimap_* command
 * call, whatever its result. Any thread. */
void imap_count_command(void);

/* ---- settings (loop_imap_settings.c) ---------------------------------- */

/* imap_parse_settings - check the settings object o and fill l's settings
 * fields (heap copies owned by l); -1 with err, where l may already hold
 * some of them: the caller frees l as usual */
int imap_parse_settings(struct imap_loop *l, json_object *o, char *err, size_t errlen);
/* imap_setting_name - the optional (or required) string setting key:
 * non-empty, no control characters, at most maxlen bytes; *out a heap copy
 * or NULL when absent. -1 with err naming the field. (Also used by the
 * bounce mailbox, health-service/bounce/.) */
int imap_setting_name(json_object *o, const char *key, bool required, size_t maxlen, char **out,
                      char *err, size_t errlen);
/* imap_read_secret - the secret for a connect: a copy of the inline
 * password, or password_file's / oauth2_token_file's contents read now
 * (checked as at create); *id (may be NULL) gets the file's identity,
 * taken before the read. The caller wipes (explicit_bzero) and frees *out.
 * -1 with err naming the field, never the contents */
int imap_read_secret(const struct imap_loop *l, char **out, struct imap_secret_id *id, char *err,
                     size_t errlen);

/* ---- connection (loop_imap_conn.c) ------------------------------------ */

/* imap_strerror - words for r; NULL for a server NO */
const char *imap_strerror(int r);

/* imap_connection_error - r leaves the session unusable */
bool imap_connection_error(int r);

/* imap_cmd_error - "WHAT failed: reason[: server text]" into err; the server
 * text only for a NO, where it belongs to this command */
void imap_cmd_error(const struct imap_loop *l, int r, const char *what, char *err, size_t errlen);

/* imap_session_open - connect, TLS as configured, LOGIN (or AUTHENTICATE
 * XOAUTH2 with oauth2_token_file), the capabilities (cap_move,
 * cap_uidplus), find the spam folder; on failure nothing stays open. The
 * caller holds the SIGPIPE guard */
int imap_session_open(struct imap_loop *l, char *err, size_t errlen);
/* imap_session_close - drop the connection, if any (polite: LOGOUT first,
 * bounded by the timeout); frees l->imap and l->spam */
void imap_session_close(struct imap_loop *l, bool polite, const char *why);
/* imap_secret_changed - the last connect attempt was refused at LOGIN or
 * AUTHENTICATE with the secret from password_file or oauth2_token_file (or
 * could not read that file), and the file changed since (inode, size or
 * mtime; or it appeared):
 * a new attempt is worth making at once, before the backoff ends (a
 * rotated password, a refreshed token). False otherwise (also with an
 * inline password). One stat(2); the thread using the loop */
bool imap_secret_changed(const struct imap_loop *l);

#endif
