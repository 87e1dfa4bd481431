#!/bin/bash
# test_sqldb.sh - libshared/infra/sqldb.c against a real PostgreSQL (TAP):
# a throwaway cluster (tests/integration/pg.sh: initdb, pg_ctl on a free
# port, stopped by PID), then tests/unit/test_sqldb with SQLDB_TEST_URL:
# the same statements as on SQLite (migrations under the advisory lock,
# bindings, RETURNING, changes, unique conflicts on citext, transactions,
# errors that quote no value, an unknown database refused without its
# password). Also: two processes migrating one database at once migrate
# it once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
start_pg "$TMP/pg" sqldb race; ok $? "a throwaway PostgreSQL cluster starts (port $PG_PORT)" || { finish; exit 1; }
check "psql answers" -- pg_sql sqldb "SELECT 1"

out=$(SQLDB_TEST_URL=$PG_URL "$BUILD_DIR/tests/test_sqldb"); rc=$?
echo "$out" | grep -v '^ok \|^1\.\.' | sed 's/^/# /'
total=$(grep -c '^ok \|^not ok ' <<<"$out"); bad=$(grep -c '^not ok ' <<<"$out")
check "test_sqldb on SQLite and PostgreSQL: $((total - bad)) of $total checks pass" -- test "$rc" = 0 -a "$bad" = 0
check "it ran the PostgreSQL engine" -- grep -q '^ok .* - postgres: the connection still serves' <<<"$out"
eq "the schema version is kept in schema_version" "$(pg_sql sqldb 'SELECT version FROM schema_version')" 2
eq "citext made by the migration" "$(pg_sql sqldb "SELECT count(*) FROM pg_extension WHERE extname = 'citext'")" 1

# two migrations at once on one database: the advisory lock runs them once
for i in 1 2; do
  (SQLDB_TEST_URL=$(pg_url race) "$BUILD_DIR/tests/test_sqldb" migrate >"$TMP/race$i.out" 2>&1) &
done
wait
check "two processes migrating together both succeed" -- bash -c "grep -q '^ok 1 - migrated' $TMP/race1.out && grep -q '^ok 1 - migrated' $TMP/race2.out"
eq "... and the schema is at version 2 once" "$(pg_sql race 'SELECT count(*), max(version) FROM schema_version')" "1|2"

stop_pg; ok $? "PostgreSQL stops"
! alive "$PG_PID"; ok $? "its postmaster is gone"
finish
