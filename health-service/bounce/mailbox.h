/* mailbox.h - the bounce mailbox over IMAP (BOUNCE_MAILBOX), through the
 * IMAP FeedbackLoop's settings parser and connection code
 * (loops/loop_imap_settings.c, loop_imap_conn.c: TCP with a deadline, TLS
 * verified against ca_file, STARTTLS, LOGIN).
 *
 * Settings (a JSON object; unknown fields are errors): host, port, tls,
 * user, password or password_file, ca_file, timeout_ms as for an "imap"
 * feedback loop (loop_imap_settings.c), plus folder (default "INBOX") and
 * processed_folder (optional: reports are moved there once processed,
 * instead of flagged \Seen).
 *
 * Owns its IMAP session (one connection, kept across rounds). Threads:
 * one at a time (the bounce reader's), which blocks SIGPIPE for its life.
 */
#ifndef MAILBOX_H
#define MAILBOX_H

#include <stddef.h>
#include <stdint.h>

struct mailbox;

/* mailbox_new - the mailbox of the settings text json (nothing connects
 * yet); NULL with a message naming the bad setting (never the password) */
struct mailbox *mailbox_new(const char *json, char *errbuf, size_t errlen);
/* mailbox_free - LOGOUT if connected, free; NULL is a no-op */
void mailbox_free(struct mailbox *m);
/* mailbox_describe - "user@host:port/folder" for log lines */
const char *mailbox_describe(const struct mailbox *m);

/* mailbox_unseen - connect if needed (a kept connection is probed with
 * NOOP), SELECT the folder, UID SEARCH UNSEEN: the UIDs in ascending order
 * into a new array (caller frees) and the folder's UIDVALIDITY. 0, or -1
 * with err (the connection is closed: the next call reconnects). */
int mailbox_unseen(struct mailbox *m, uint32_t **uids, size_t *n, uint32_t *uidvalidity, char *err,
                   size_t errlen);
/* mailbox_fetch - UID FETCH BODY.PEEK[] (no flag changes): the message in
 * a new buffer (caller frees). 0; 1 when the server has no such message
 * (expunged meanwhile); 2 when it is over max bytes (err says its size);
 * -1 connection error (closed) */
int mailbox_fetch(struct mailbox *m, uint32_t uid, size_t max, char **msg, size_t *len, char *err,
                  size_t errlen);
/* mailbox_done - the processed reports flagged \Seen, or moved to
 * processed_folder (UID MOVE); 0, or -1 with err */
int mailbox_done(struct mailbox *m, const uint32_t *uids, size_t n, char *err, size_t errlen);

#endif
