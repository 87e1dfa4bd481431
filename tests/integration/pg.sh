# pg.sh - a throwaway PostgreSQL cluster for the integration tests.
# Source it after lib.sh (uses track, freeport, wait_for).
#
#   start_pg DIR [DBNAME...] - initdb a new cluster in DIR/data (trust
#       authentication, superuser "postgres"), start it on 127.0.0.1 at a
#       free port with its socket in DIR, create each DBNAME (default
#       "warmup"); sets PG_PORT, PG_PID (the postmaster) and
#       PG_URL=postgres://postgres@127.0.0.1:PORT/<first DBNAME>. As root
#       the cluster runs as the postgres user (initdb refuses root).
#       Logs in DIR/log. Returns 1 (with the log) when it cannot start.
#   pg_url DBNAME - the URL of another database of the cluster
#   pg_sql DBNAME SQL - run SQL with psql (-At: bare values), as postgres
#   restart_pg - fast shutdown and start again (clients lose their sessions)
#   stop_pg - fast shutdown, wait, then SIGKILL if the postmaster lingers

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

_pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_pg() {
  local dir=$1 db; shift
  [ -x "$PG_BIN/initdb" ] || { echo "# PostgreSQL is not installed (Debian package postgresql)"; return 1; }
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && { chown postgres "$dir"; chmod 700 "$dir"; }
  PG_DIR=$dir PG_PORT=$(freeport)
  _pg_as "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-instructions \
    >"$dir/initdb.log" 2>&1 || { sed 's/^/#   /' "$dir/initdb.log"; return 1; }
  _pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
    -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null 2>&1 || { echo "# PostgreSQL did not start"; sed 's/^/#   /' "$dir/log"; return 1; }
  PG_PID=$(head -1 "$dir/data/postmaster.pid")
  track "$PG_PID"
  [ $# -eq 0 ] && set -- warmup
  for db in "$@"; do pg_sql postgres "CREATE DATABASE \"$db\"" >/dev/null || return 1; done
  PG_URL=$(pg_url "$1")
}

pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"; }
pg_sql() { _pg_as psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }

restart_pg() {
  _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -m fast -w -t 60 restart \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    >/dev/null 2>&1 || return 1
  PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  track "$PG_PID"
}

stop_pg() {
  [ -n "${PG_DIR-}" ] || return 0
  _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    { [ -n "${PG_PID-}" ] && kill -KILL "$PG_PID" 2>/dev/null; }
  PG_DIR=
}
