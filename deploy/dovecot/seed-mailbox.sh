#!/bin/bash
# seed-mailbox.sh - the IMAP seed mailbox of the compose stack: Dovecot with
# one passwd-file user, STARTTLS on port 143, run entirely as the unprivileged
# user that starts it (the image's vmail; no root, no chroot, no setuid).
# The health service's IMAP feedback loop logs in to it for one domain
# (deploy/compose/feedback-loops.json).
#
#   seed-mailbox.sh              first-start set-up, then Dovecot in the foreground
#   seed-mailbox.sh healthcheck  STARTTLS verified against the shared CA, then LOGIN
#   seed-mailbox.sh put [FOLDER] a message on stdin into FOLDER (INBOX, Junk)
#
# At every start (idempotent; kept in volumes, so restarts keep certificates,
# password and mail):
# - TLS: a private CA signs a server certificate for DOVECOT_CERT_NAMES
#   (default "dovecot", the compose host name the loop verifies); the CA key
#   is discarded once the certificate is signed. Re-issued when missing, no
#   longer signed by the shared CA, issued for other names, or expiring
#   within 30 days.
# - password: SEED_PASSWORD_FILE, else SEED_PASSWORD, else the one kept from
#   an earlier start, else 24 random bytes in hex. Dovecot keeps only its
#   SHA512-CRYPT hash.
# - SHARED_DIR (the volume the health service mounts read-only) gets ca.pem
#   (0644) and seed_password (0640, group SHARED_GID = the services' group
#   app, when this user is a member of it), each replaced atomically.
#
# Every path is a variable so that tests/integration/test_compose.sh can run
# this very script outside Docker, in a temporary directory.
set -euo pipefail

SEED_USER=${SEED_USER:-seed@seed.test}
DOVECOT_PORT=${DOVECOT_PORT:-143}
DOVECOT_LISTEN=${DOVECOT_LISTEN:-*}
DOVECOT_CERT_NAMES=${DOVECOT_CERT_NAMES:-dovecot}
DOVECOT_CONF=${DOVECOT_CONF:-/etc/dovecot/dovecot.conf}
DATA_DIR=${DATA_DIR:-/var/lib/dovecot-seed}    # tls/, users, state/
MAIL_DIR=${MAIL_DIR:-/var/mail/seed}           # one home per user, Maildir inside
RUN_DIR=${RUN_DIR:-/run/dovecot-seed}          # Dovecot's base_dir (sockets, pid)
SHARED_DIR=${SHARED_DIR:-/var/lib/dovecot-shared}
SHARED_GID=${SHARED_GID:-10001}

log() { printf 'seed-mailbox: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# write_atomic FILE MODE - stdin into FILE via a temporary file and rename
write_atomic() {
  local f=$1 mode=$2 t
  t=$(mktemp "$f.XXXXXX")
  cat >"$t"
  chmod "$mode" "$t"
  mv -f "$t" "$f"
}

# cert_ok - the server certificate exists, is signed by the shared CA, names
# exactly DOVECOT_CERT_NAMES and is valid for 30 more days
cert_ok() {
  local tls=$DATA_DIR/tls
  [ -s "$tls/server.pem" ] && [ -s "$tls/server.key" ] && [ -s "$SHARED_DIR/ca.pem" ] || return 1
  [ "$(cat "$tls/names" 2>/dev/null)" = "$DOVECOT_CERT_NAMES" ] || return 1
  openssl verify -purpose sslserver -CAfile "$SHARED_DIR/ca.pem" "$tls/server.pem" >/dev/null 2>&1 || return 1
  openssl x509 -checkend 2592000 -noout -in "$tls/server.pem" >/dev/null 2>&1
}

issue_cert() {
  local tls=$DATA_DIR/tls work n san="" first=""
  for n in $DOVECOT_CERT_NAMES; do
    san="${san:+$san,}DNS:$n"
    first=${first:-$n}
  done
  [ -n "$first" ] || die "DOVECOT_CERT_NAMES is empty"
  work=$(mktemp -d "$DATA_DIR/tls-new.XXXXXX")
  (
    umask 077
    cd "$work"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=warmup compose seed mailbox CA" \
      -keyout ca.key -out ca.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$first" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
      "$san" >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 825 -extfile ext.cnf -out server.pem 2>/dev/null
    rm -f ca.key server.csr ext.cnf # nothing else is ever signed with this CA
  )
  mkdir -p "$tls"
  chmod 700 "$tls"
  mv -f "$work/server.key" "$tls/server.key"
  mv -f "$work/server.pem" "$tls/server.pem"
  printf '%s' "$DOVECOT_CERT_NAMES" >"$tls/names"
  write_atomic "$SHARED_DIR/ca.pem" 0644 <"$work/ca.pem"
  rm -rf "$work"
  log "issued a server certificate for $DOVECOT_CERT_NAMES (CA in $SHARED_DIR/ca.pem)"
}

# seed_password - prints the password to use (see the header)
seed_password() {
  local pw
  if [ -n "${SEED_PASSWORD_FILE:-}" ]; then
    [ -z "${SEED_PASSWORD:-}" ] || die "set SEED_PASSWORD or SEED_PASSWORD_FILE, not both"
    [ -r "$SEED_PASSWORD_FILE" ] || die "SEED_PASSWORD_FILE: cannot read '$SEED_PASSWORD_FILE'"
    pw=$(cat "$SEED_PASSWORD_FILE")
  elif [ -n "${SEED_PASSWORD:-}" ]; then
    pw=$SEED_PASSWORD
  elif [ -s "$SHARED_DIR/seed_password" ]; then
    pw=$(cat "$SHARED_DIR/seed_password")
  else
    pw=$(openssl rand -hex 24)
    log "generated a seed password (kept in $SHARED_DIR/seed_password)"
  fi
  pw=${pw%$'\n'}
  pw=${pw%$'\r'}
  case $pw in
    "" | *$'\n'* | *$'\r'*) die "the seed password must be one non-empty line" ;;
  esac
  printf '%s' "$pw"
}

setup() {
  local u g uid gid pw hash home i
  u=$(id -un)
  g=$(id -gn)
  uid=$(id -u)
  gid=$(id -g)
  [ "$uid" != 0 ] || die "refusing to run as root (the image runs as vmail)"
  mkdir -p "$DATA_DIR/state" "$MAIL_DIR" "$RUN_DIR" "$SHARED_DIR"
  chmod 700 "$DATA_DIR" "$DATA_DIR/state"
  chmod 755 "$RUN_DIR" # Dovecot wants its base_dir world-readable

  cert_ok || issue_cert

  pw=$(seed_password)
  # only the health service's group may read it (when we are in that group)
  printf '%s' "$pw" | write_atomic "$SHARED_DIR/seed_password" 0600
  for i in $(id -G); do
    if [ "$i" = "$SHARED_GID" ]; then
      chgrp "$SHARED_GID" "$SHARED_DIR/seed_password"
      chmod 0640 "$SHARED_DIR/seed_password"
    fi
  done
  hash=$(printf '%s' "$pw" | openssl passwd -6 -stdin)
  home=$MAIL_DIR/$SEED_USER
  mkdir -p "$home/Maildir"
  # passwd-file: user:{scheme}hash:uid:gid::home::
  printf '%s:{SHA512-CRYPT}%s:%s:%s::%s::\n' "$SEED_USER" "$hash" "$uid" "$gid" "$home" |
    write_atomic "$DATA_DIR/users" 0600

  # written in place: DOVECOT_CONF may sit in a directory we cannot write (/etc/dovecot)
  cat >"$DOVECOT_CONF" <<EOC
# generated by seed-mailbox.sh at every start - edit that script instead
protocols = imap
listen = $DOVECOT_LISTEN
base_dir = $RUN_DIR
state_dir = $DATA_DIR/state
instance_name = seed-mailbox
log_path = /dev/stderr
info_log_path = /dev/stderr
# one unprivileged user for everything: login, auth, mail
default_login_user = $u
default_internal_user = $u
default_internal_group = $g
first_valid_uid = $uid
last_valid_uid = $uid
first_valid_gid = $gid
last_valid_gid = $gid
mail_privileged_group =
# TLS is required before any login (STARTTLS on the imap port)
ssl = required
ssl_cert = <$DATA_DIR/tls/server.pem
ssl_key = <$DATA_DIR/tls/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT username_format=%u $DATA_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DATA_DIR/users
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $DOVECOT_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
EOC
}

healthcheck() {
  local pw name out
  name=${DOVECOT_CERT_NAMES%% *}
  [ -s "$SHARED_DIR/ca.pem" ] && [ -s "$SHARED_DIR/seed_password" ] || return 1
  pw=$(cat "$SHARED_DIR/seed_password")
  pw=${pw//\\/\\\\} # IMAP quoted string: escape \ and "
  pw=${pw//\"/\\\"}
  # the chain and the name the health service checks, then a real LOGIN
  out=$(printf 'a LOGIN "%s" "%s"\r\nb LOGOUT\r\n' "$SEED_USER" "$pw" |
    timeout 8 openssl s_client -quiet -connect "127.0.0.1:$DOVECOT_PORT" -starttls imap \
      -servername "$name" -CAfile "$SHARED_DIR/ca.pem" -verify_hostname "$name" \
      -verify_return_error 2>/dev/null) || true
  grep -q '^a OK' <<<"${out//$'\r'/}"
}

case ${1:-run} in
  run)
    setup
    log "IMAP (STARTTLS) on port $DOVECOT_PORT for $SEED_USER"
    exec dovecot -F -c "$DOVECOT_CONF"
    ;;
  healthcheck) healthcheck ;;
  put) exec doveadm -c "$DOVECOT_CONF" save -u "$SEED_USER" -m "${2:-INBOX}" ;;
  *) die "usage: $0 [run | healthcheck | put [FOLDER]]" ;;
esac
