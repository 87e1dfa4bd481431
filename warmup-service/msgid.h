/* msgid.h - the Message-ID of a copy (DESIGN 5): <email-{id}.{16 hex}@{domain}>,
 * unique per copy, the same at every attempt, unguessable without the
 * email's salt. The worker writes it into the copy; POST /messages answers
 * it before the copy is sent. Pure; any thread. */
#ifndef MSGID_H
#define MSGID_H

#include <stdint.h>

/* msgid_copy - the Message-ID of copy copy_id of email email_id; caller frees */
char *msgid_copy(int64_t email_id, const char *salt, int64_t copy_id, const char *domain);

#endif
