/* tz.h - IANA time zones read from the system's TZif files, without the C
 * library's process-wide TZ state (no setenv("TZ"), no localtime).
 *
 * tz_load() reads /usr/share/zoneinfo/<name> (RFC 8536: version 1, or the
 * 64-bit block of versions 2-4) and parses the POSIX TZ footer, which gives
 * the offsets after the file's last transition ("slim" files end early).
 * Leap-second records ("right/" zones) are ignored. A loaded zone is
 * read-only: any thread may use it at the same time; the caller frees it
 * with tz_free(). A NULL zone means UTC in every function below.
 * Also the proleptic Gregorian calendar on days since 1970-01-01.
 */
#ifndef TZ_H
#define TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz;

/* tz_load - the zone named like "Europe/Berlin", "UTC" or "Etc/GMT-3" (at
 * most 64 characters of [A-Za-z0-9_+-/], no "..", no leading "/"); "UTC"
 * and "Etc/UTC" work without the file. NULL with "unknown time zone 'X'"
 * or "time zone 'X': ..." in err. Caller frees with tz_free(). */
struct tz *tz_load(const char *name, char *err, size_t n);
/* tz_load_dir - tz_load from another zoneinfo directory (tests) */
struct tz *tz_load_dir(const char *dir, const char *name, char *err, size_t n);
/* tz_parse - a zone from TZif bytes (what tz_load reads); name is kept for
 * tz_name() and messages. NULL with the reason in err. */
struct tz *tz_parse(const unsigned char *data, size_t len, const char *name, char *err, size_t n);
/* tz_free - free the zone; NULL is a no-op */
void tz_free(struct tz *tz);
/* tz_name - the name given to tz_load ("UTC" for NULL); borrowed, lives as
 * long as the zone */
const char *tz_name(const struct tz *tz);
/* tz_offset_s - seconds east of UTC in effect at the instant utc_s
 * (seconds since the epoch) */
int32_t tz_offset_s(const struct tz *tz, int64_t utc_s);
/* tz_local_to_utc - the instant whose local wall time is local_s (seconds
 * since 1970-01-01 00:00 local). A wall time skipped by a change (DST gap)
 * moves forward by the gap (02:30 on a 02:00->03:00 day is 03:30); a
 * repeated wall time takes the earlier instant. 0, or -1 when local_s is
 * beyond +-1e15 s (*utc_s untouched). */
int tz_local_to_utc(const struct tz *tz, int64_t local_s, int64_t *utc_s);

/* tz_days_from_civil - days since 1970-01-01 of y-m-d (m 1..12, d 1..31,
 * not checked against the month) */
int64_t tz_days_from_civil(int64_t y, int m, int d);
/* tz_civil_from_days - the date of a day number */
void tz_civil_from_days(int64_t day, int64_t *y, int *m, int *d);
/* tz_days_in_month - 28..31 (m 1..12) */
int tz_days_in_month(int64_t y, int m);

#endif
