/* store_pg.h - warmup-service's schema on PostgreSQL (DATABASE_URL).
 *
 * PostgreSQL starts at the SQLite schema's latest version in one
 * migration (the first); entries 2 to 11 are no-ops, so both engines
 * count the same versions and a later migration is added to both arrays
 * at the same index (12 changes an index on PostgreSQL only). Types: INTEGER -> bigint, REAL ->
 * double precision; the columns SQLite compares with COLLATE NOCASE are citext.
 *
 * Differences from SQLite, all invisible to the SQL the stores share:
 *  - deliveries is partitioned by month of creation (created_ms, filled
 *    by default): warmup_partitions(n) makes the current month's and n
 *    following months' partitions (called at open and by the archiver);
 *    a default partition takes anything else. An old month whose copies
 *    were all archived is dropped (the live table shrinks);
 *  - tables whose SQLite listing order is the rowid have a bigserial
 *    column named rowid;
 *  - json_type, json_extract and json_each: PL/pgSQL versions of SQLite's,
 *    for one-level paths ('$.key' or '$."key"'): json_type answers
 *    SQLite's type names, json_extract a scalar as text;
 *  - the fan-out triggers (store_fanout.h) in PL/pgSQL; they also count
 *    suppression changes in fanout_counts.supp_version, which instances
 *    poll (a suppression made by one instance reaches the others' claims);
 *  - instances: one row per live warmup-service instance (heartbeat), for
 *    the shared TPM and the release of a dead instance's leases. */
#ifndef STORE_PG_H
#define STORE_PG_H

#include "outbox.h"

/* migration 12 (PostgreSQL; a no-op on SQLite): deliveries_updated
 * carries state, so /history's state and time range is read from the
 * index alone (store_history.c); deliveries_id goes, the primary key
 * (id, created_ms) serves every read by id; deliveries_recipient keys
 * the lowercased address in the "C" collation, compared byte for byte,
 * where citext lowercased both sides of every comparison (a claim or an
 * outcome, each a new entry in every index, took 40 % longer). Queries
 * match it as lower(recipient::text) COLLATE "C" = lower(?) */
#define STORE_PG_INDEXES_12_SQL                                                                    \
    "DROP INDEX deliveries_id;"                                                                    \
    "DROP INDEX deliveries_recipient;"                                                             \
    "CREATE INDEX deliveries_recipient ON deliveries((lower(recipient::text)) COLLATE \"C\", id);" \
    "DROP INDEX deliveries_updated;"                                                               \
    "CREATE INDEX deliveries_updated ON deliveries(updated_at, id, state)"                         \
    " WHERE updated_at IS NOT NULL;"

/* migration 13 (PostgreSQL; a no-op on SQLite): the eligible count grows
 * once per INSERT of users, by its new rows not suppressed (a transition
 * table), instead of one update of that row per user: a batch of 1,000
 * registrations left 1,000 versions of it (bench/import.sh) */
#define STORE_PG_USERS_TRIGGER_13_SQL                                                              \
    "DROP TRIGGER fanout_user ON users;"                                                           \
    "CREATE OR REPLACE FUNCTION fanout_user() RETURNS trigger LANGUAGE plpgsql AS $$"              \
    " DECLARE n bigint; BEGIN"                                                                     \
    " SELECT count(*) INTO n FROM fanout_new_users u WHERE NOT EXISTS"                             \
    " (SELECT 1 FROM suppressions WHERE address = u.email_id);"                                    \
    " IF n > 0 THEN UPDATE fanout_counts SET eligible = eligible + n WHERE id = 1; END IF;"        \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE TRIGGER fanout_user AFTER INSERT ON users REFERENCING NEW TABLE AS fanout_new_users"   \
    " FOR EACH STATEMENT EXECUTE FUNCTION fanout_user();"

#define STORE_PG_SCHEMA_SQL                                                                        \
    "CREATE EXTENSION IF NOT EXISTS citext;"                                                       \
    "CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL,"                            \
    " email_id citext NOT NULL UNIQUE, domain text NOT NULL, created_at text NOT NULL,"            \
    " lane bigint NOT NULL DEFAULT 0, attributes text);"                                           \
    "CREATE TABLE emails (id bigserial PRIMARY KEY, message_id text NOT NULL,"                     \
    " from_addr text NOT NULL, from_name text, subject text NOT NULL, body text NOT NULL,"         \
    " html text, smtp_client text NOT NULL, tpm bigint NOT NULL DEFAULT 0,"                        \
    " paused bigint NOT NULL DEFAULT 0, salt text NOT NULL, msgid_domain text NOT NULL,"           \
    " created_at text NOT NULL, n_pending bigint NOT NULL DEFAULT 0,"                              \
    " n_sent bigint NOT NULL DEFAULT 0, n_failed bigint NOT NULL DEFAULT 0,"                       \
    " n_dead bigint NOT NULL DEFAULT 0, n_suppressed bigint NOT NULL DEFAULT 0,"                   \
    " kind bigint NOT NULL DEFAULT 0, priority bigint NOT NULL DEFAULT 0, campaign_id bigint,"     \
    " variant text, template text, template_version bigint, defaults text,"                        \
    " fan_cursor bigint NOT NULL DEFAULT 0, fan_max bigint NOT NULL DEFAULT 0,"                    \
    " fan_left bigint NOT NULL DEFAULT 0);"                                                        \
    "CREATE INDEX emails_campaign ON emails(campaign_id) WHERE campaign_id IS NOT NULL;"           \
    "CREATE INDEX emails_fanout ON emails(id) WHERE fan_cursor < fan_max;"                         \
    "CREATE TABLE deliveries (id bigserial, email_id bigint NOT NULL, user_id bigint NOT NULL,"    \
    " recipient citext NOT NULL, name text NOT NULL, state bigint NOT NULL DEFAULT 0,"             \
    " attempts bigint NOT NULL DEFAULT 0, due_at bigint NOT NULL DEFAULT 0,"                       \
    " lease_until bigint NOT NULL DEFAULT 0, last_code bigint, last_enhanced text,"                \
    " last_reply text, updated_at bigint, lane bigint NOT NULL DEFAULT 0, data text,"              \
    " lease_owner text, created_ms bigint NOT NULL"                                                \
    " DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,"                             \
    " PRIMARY KEY (id, created_ms)) PARTITION BY RANGE (created_ms);"                              \
    "CREATE TABLE deliveries_pdefault PARTITION OF deliveries DEFAULT;"                            \
    "CREATE INDEX deliveries_id ON deliveries(id);"                                                \
    "CREATE INDEX deliveries_dead ON deliveries(email_id) WHERE state = 4;"                        \
    "CREATE INDEX deliveries_claim ON deliveries(email_id, state, due_at) WHERE state IN (0, 3);"  \
    "CREATE INDEX deliveries_lane ON deliveries(email_id, lane, state, due_at)"                    \
    " WHERE state IN (0, 3);"                                                                      \
    "CREATE INDEX deliveries_leased ON deliveries(lease_owner) WHERE state = 1;"                   \
    "CREATE INDEX deliveries_email ON deliveries(email_id, id);"                                   \
    "CREATE INDEX deliveries_recipient ON deliveries(recipient, id);"                              \
    "CREATE INDEX deliveries_state ON deliveries(state, id);"                                      \
    "CREATE INDEX deliveries_updated ON deliveries(updated_at, id) WHERE updated_at IS NOT NULL;"  \
    "CREATE TABLE suppressions (address citext PRIMARY KEY, reason text NOT NULL,"                 \
    " at_ms bigint NOT NULL, email_ref bigint, rowid bigserial UNIQUE);"                           \
    "CREATE TABLE domains (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);"                  \
    "CREATE TABLE identity_days (identity_id bigint NOT NULL, day bigint NOT NULL,"                \
    " lane bigint NOT NULL, sent bigint NOT NULL, PRIMARY KEY (identity_id, day, lane));"          \
    "CREATE TABLE identities (id bigserial PRIMARY KEY, address citext NOT NULL UNIQUE,"           \
    " name text, smtp_client text, ramp_start_per_day bigint, ramp_growth_pct double precision,"   \
    " ramp_max_per_day bigint, ramp_start_day bigint, win_start_min bigint, win_end_min bigint,"   \
    " tz text, paused bigint NOT NULL DEFAULT 0, paused_reason text, created_at text NOT NULL);"   \
    "CREATE TABLE identity_providers (identity_id bigint NOT NULL, provider text NOT NULL,"        \
    " state text NOT NULL, reason text NOT NULL DEFAULT '', since_ms bigint NOT NULL,"             \
    " grace_until_ms bigint NOT NULL DEFAULT 0, checked bigint NOT NULL DEFAULT 0,"                \
    " inbox_rate double precision NOT NULL DEFAULT 0,"                                             \
    " spam_rate double precision NOT NULL DEFAULT 0,"                                              \
    " bounce_rate double precision NOT NULL DEFAULT 0,"                                            \
    " complaint_rate double precision NOT NULL DEFAULT 0, window_s bigint, inbox bigint,"          \
    " spam bigint, bounced bigint, complained bigint, summary_at text,"                            \
    " PRIMARY KEY (identity_id, provider));"                                                       \
    "CREATE TABLE templates (name text NOT NULL, version bigint NOT NULL, subject text NOT NULL,"  \
    " text text NOT NULL, html text, defaults text NOT NULL, from_addr text, from_name text,"      \
    " created_at text NOT NULL, PRIMARY KEY (name, version));"                                     \
    "CREATE TABLE campaigns (id bigserial PRIMARY KEY, name text NOT NULL,"                        \
    " from_addr text NOT NULL, from_name text, template text NOT NULL, version bigint NOT NULL,"   \
    " audience text NOT NULL, variants text, tpm bigint NOT NULL DEFAULT 0, smtp_client text,"     \
    " state text NOT NULL DEFAULT 'draft', paused bigint NOT NULL DEFAULT 0,"                      \
    " total bigint NOT NULL DEFAULT 0, created_at text NOT NULL, started_at text);"                \
    "CREATE TABLE campaign_recipients (campaign_id bigint NOT NULL, address citext NOT NULL,"      \
    " name text NOT NULL, domain text NOT NULL, attributes text, line bigint NOT NULL,"            \
    " PRIMARY KEY (campaign_id, address));"                                                        \
    "CREATE TABLE uploads (id text PRIMARY KEY, campaign_id bigint, filename text NOT NULL,"       \
    " size bigint NOT NULL, content_type text NOT NULL, part_size bigint NOT NULL,"                \
    " nparts bigint NOT NULL, backend text NOT NULL, s3_upload_id text, object_key text,"          \
    " state text NOT NULL, expires_ms bigint NOT NULL, created_at text NOT NULL,"                  \
    " rowid bigserial UNIQUE);"                                                                    \
    "CREATE TABLE upload_parts (upload_id text NOT NULL, part bigint NOT NULL,"                    \
    " size bigint NOT NULL, etag text NOT NULL, PRIMARY KEY (upload_id, part));"                   \
    "CREATE TABLE imports (id bigserial PRIMARY KEY, kind text NOT NULL, campaign_id bigint,"      \
    " upload_id text, source text NOT NULL, state text NOT NULL, rows bigint NOT NULL DEFAULT 0,"  \
    " imported bigint NOT NULL DEFAULT 0, duplicates bigint NOT NULL DEFAULT 0,"                   \
    " invalid text NOT NULL DEFAULT '[]', n_invalid bigint NOT NULL DEFAULT 0, error text,"        \
    " resume_at bigint NOT NULL DEFAULT 0, created_at text NOT NULL, updated_at text);"            \
    "CREATE TABLE message_requests (key text PRIMARY KEY, email_id bigint NOT NULL,"               \
    " copy_id bigint NOT NULL);"                                                                   \
    "CREATE TABLE archives (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE,"                  \
    " store text NOT NULL, first_id bigint NOT NULL, last_id bigint NOT NULL,"                     \
    " n_rows bigint NOT NULL, n_bytes bigint NOT NULL, min_updated_at bigint NOT NULL,"            \
    " max_updated_at bigint NOT NULL, created_at bigint NOT NULL);"                                \
    "CREATE TABLE instances (id text PRIMARY KEY, started_ms bigint NOT NULL,"                     \
    " seen_ms bigint NOT NULL);"                                                                   \
    "CREATE TABLE fanout_counts (id bigint PRIMARY KEY, eligible bigint NOT NULL,"                 \
    " supp_version bigint NOT NULL DEFAULT 0);"                                                    \
    "INSERT INTO fanout_counts(id, eligible) VALUES (1, 0);" OUTBOX_PG_SCHEMA_SQL                  \
        STORE_PG_FUNCTIONS_SQL

/* json_* as SQLite answers them (one-level paths), the fan-out triggers,
 * the monthly partitions */
#define STORE_PG_FUNCTIONS_SQL                                                                     \
    "CREATE FUNCTION json_key(path text) RETURNS text LANGUAGE sql IMMUTABLE AS"                   \
    " $$ SELECT CASE WHEN path LIKE '$.\"%\"' THEN substr(path, 4, length(path) - 4)"              \
    " ELSE substr(path, 3) END $$;"                                                                \
    "CREATE FUNCTION json_type(doc text, path text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$" \
    " DECLARE v jsonb; BEGIN"                                                                      \
    " IF doc IS NULL OR path IS NULL THEN RETURN NULL; END IF;"                                    \
    " BEGIN v := doc::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END;"                         \
    " IF path <> '$' THEN IF jsonb_typeof(v) <> 'object' THEN RETURN NULL; END IF;"                \
    " v := v -> json_key(path); END IF;"                                                           \
    " RETURN CASE jsonb_typeof(v) WHEN 'string' THEN 'text' WHEN 'boolean' THEN v #>> '{}'"        \
    " WHEN 'number' THEN CASE WHEN (v #>> '{}') ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END"     \
    " ELSE jsonb_typeof(v) END; END $$;"                                                           \
    "CREATE FUNCTION json_extract(doc text, path text) RETURNS text LANGUAGE plpgsql IMMUTABLE"    \
    " AS $$ DECLARE v jsonb; BEGIN"                                                                \
    " IF doc IS NULL OR path IS NULL THEN RETURN NULL; END IF;"                                    \
    " BEGIN v := doc::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END;"                         \
    " IF path <> '$' THEN IF jsonb_typeof(v) <> 'object' THEN RETURN NULL; END IF;"                \
    " v := v -> json_key(path); END IF;"                                                           \
    " IF v IS NULL OR jsonb_typeof(v) = 'null' THEN RETURN NULL; END IF;"                          \
    " RETURN v #>> '{}'; END $$;"                                                                  \
    "CREATE FUNCTION json_each(doc text, path text)"                                               \
    " RETURNS TABLE(key text, value text, type text) LANGUAGE plpgsql IMMUTABLE AS $$"             \
    " DECLARE v jsonb; BEGIN"                                                                      \
    " IF doc IS NULL THEN RETURN; END IF;"                                                         \
    " v := doc::jsonb; IF path <> '$' THEN v := v -> json_key(path); END IF;"                      \
    " IF jsonb_typeof(v) = 'object' THEN RETURN QUERY SELECT e.key, e.value #>> '{}',"             \
    " json_type(jsonb_build_object('v', e.value)::text, '$.v') FROM jsonb_each(v) e;"              \
    " ELSIF jsonb_typeof(v) = 'array' THEN RETURN QUERY SELECT (e.n - 1)::text,"                   \
    " e.value #>> '{}', json_type(jsonb_build_object('v', e.value)::text, '$.v')"                  \
    " FROM jsonb_array_elements(v) WITH ORDINALITY AS e(value, n); END IF; END $$;"                \
    "CREATE FUNCTION fanout_user() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"                   \
    " UPDATE fanout_counts SET eligible = eligible + 1 WHERE id = 1 AND NOT EXISTS"                \
    " (SELECT 1 FROM suppressions WHERE address = NEW.email_id); RETURN NULL; END $$;"             \
    "CREATE TRIGGER fanout_user AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION "              \
    "fanout_user();"                                                                               \
    "CREATE FUNCTION fanout_supp_add() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"               \
    " UPDATE fanout_counts SET supp_version = supp_version + 1, eligible = eligible -"             \
    " CASE WHEN EXISTS (SELECT 1 FROM users WHERE email_id = NEW.address) THEN 1 ELSE 0 END"       \
    " WHERE id = 1;"                                                                               \
    " UPDATE emails SET fan_left = fan_left - 1, n_suppressed = n_suppressed + 1"                  \
    " WHERE id IN (SELECT e.id FROM emails e, users u WHERE e.fan_cursor < e.fan_max"              \
    " AND u.email_id = NEW.address AND u.id > e.fan_cursor AND u.id <= e.fan_max);"                \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE TRIGGER fanout_supp_add AFTER INSERT ON suppressions FOR EACH ROW"                     \
    " EXECUTE FUNCTION fanout_supp_add();"                                                         \
    "CREATE FUNCTION fanout_supp_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"               \
    " UPDATE fanout_counts SET supp_version = supp_version + 1, eligible = eligible +"             \
    " CASE WHEN EXISTS (SELECT 1 FROM users WHERE email_id = OLD.address) THEN 1 ELSE 0 END"       \
    " WHERE id = 1;"                                                                               \
    " UPDATE emails SET fan_left = fan_left + 1"                                                   \
    " WHERE id IN (SELECT e.id FROM emails e, users u WHERE e.fan_cursor < e.fan_max"              \
    " AND u.email_id = OLD.address AND u.id > e.fan_cursor AND u.id <= e.fan_max);"                \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE TRIGGER fanout_supp_del AFTER DELETE ON suppressions FOR EACH ROW"                     \
    " EXECUTE FUNCTION fanout_supp_del();"                                                         \
    "CREATE FUNCTION warmup_partitions(ahead int) RETURNS void LANGUAGE plpgsql AS $$"             \
    " DECLARE m timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';"  \
    " lo bigint; hi bigint; nm text; BEGIN"                                                        \
    " FOR i IN 0..ahead LOOP"                                                                      \
    " lo := (extract(epoch FROM m + make_interval(months => i)) * 1000)::bigint;"                  \
    " hi := (extract(epoch FROM m + make_interval(months => i + 1)) * 1000)::bigint;"              \
    " nm := 'deliveries_p' || to_char((m + make_interval(months => i)) AT TIME ZONE 'UTC',"        \
    " 'YYYYMM');"                                                                                  \
    " IF to_regclass(nm) IS NULL THEN"                                                             \
    " EXECUTE format('CREATE TABLE %I PARTITION OF deliveries FOR VALUES FROM (%s) TO (%s)',"      \
    " nm, lo, hi); END IF; END LOOP; END $$;"                                                      \
    "SELECT warmup_partitions(2);"

#endif
