# smtp_servers.sh - SMTP servers for the integration tests. Source it after
# lib.sh (uses PY, TMP, track, wait_for). Every server listens on
# 127.0.0.1, is tracked (killed by PID at exit) and can be stopped with
# stop_pid "$SINK_PID" / stop_pid "$SMTPD_PID".

SMTPD_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/smtpd_tls_auth.py"

# gen_certs DIR - a test CA (ca.pem, ca.key); server.pem/.key for localhost
# and 127.0.0.1 signed by it; wrong.pem/.key for the name wrong.test only,
# signed by the same CA; and an unrelated CA other-ca.pem (other-ca.key)
gen_certs() {
  local d=$1
  mkdir -p "$d" || return 1
  (
    set -e
    cd "$d"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Test CA $ca" \
        -keyout "$ca.key" -out "$ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    done
    leaf() { # leaf NAME CN SAN
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    leaf server localhost "DNS:localhost,IP:127.0.0.1"
    leaf wrong wrong.test "DNS:wrong.test"
    rm -f ca.srl
    chmod 600 ./*.key
  )
}

# start_smtp_sink PORT DIR [--dump] [smtp-sink args...] - Postfix smtp-sink
# on 127.0.0.1:PORT (dropping to nobody when root); --dump writes each
# message to a file DIR/msg.* (-d); output in DIR/sink.log; sets SINK_PID
start_smtp_sink() {
  local port=$1 dir=$2 dump=()
  shift 2
  if [ "${1-}" = --dump ]; then dump=(-d "$dir/msg."); shift; fi
  mkdir -p "$dir" && chmod 777 "$dir"
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" "${dump[@]}" "$@" "127.0.0.1:$port" 256 </dev/null >"$dir/sink.log" 2>&1 &
  SINK_PID=$!
  track $SINK_PID
  # a connect attempt; smtp-sink is ready when it accepts
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" ||
    { echo "# smtp-sink did not start"; cat "$dir/sink.log"; return 1; }
}

# start_smtpd_tls PORT DIR CERTDIR USER:PASS [args...] - aiosmtpd with
# STARTTLS and AUTH required (smtpd_tls_auth.py; args such as
# --implicit-tls, --cert, --pipelining are passed on); messages and
# log.jsonl in DIR; ready when it wrote DIR/ready; sets SMTPD_PID
start_smtpd_tls() {
  local port=$1 dir=$2 certs=$3 user=$4
  shift 4
  mkdir -p "$dir"
  rm -f "$dir/ready"
  "$PY" "$SMTPD_PY" --port "$port" --cert "$certs/server.pem" --key "$certs/server.key" \
    --user "$user" --outdir "$dir" --ready-file "$dir/ready" "$@" </dev/null >"$dir/smtpd.log" 2>&1 &
  SMTPD_PID=$!
  track $SMTPD_PID
  wait_for 15 test -s "$dir/ready" ||
    { echo "# smtpd_tls_auth.py did not start"; cat "$dir/smtpd.log"; return 1; }
}
