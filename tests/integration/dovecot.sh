# dovecot.sh - a standalone Dovecot (IMAP seed mailboxes) for the
# integration tests. Source it after lib.sh (uses track, stop_pid).
# Nothing from /etc/dovecot is read: the config, users, mail, state and
# logs all live in the given directory. Works as root (Dovecot drops to
# dovenull/dovecot, mail owned by nobody) or as an unprivileged user.
#
#   start_dovecot DIR IMAP_PORT IMAPS_PORT CERTDIR [JUNK]
#       passwd-file users seed1@gmail.test and seed2@gmail.test, password
#       "password"; Maildir (DIR/home/USER/Maildir) with INBOX and the
#       folder JUNK (default Junk) carrying SPECIAL-USE \Junk; STARTTLS on
#       IMAP_PORT, implicit TLS on IMAPS_PORT, both with CERTDIR/server.pem
#       and .key (gen_certs in smtp_servers.sh); log in DIR/dovecot.log.
#       Ready when the master logged "starting up" (a TCP probe could hit
#       an instance still shutting down, and slows the stop). Sets
#       DOVECOT_PID. Can be called again on the same DIR after
#       stop_dovecot (a restart keeps the mail).
#   stop_dovecot - SIGTERM the master, wait until it is gone
#   put_message DIR USER FOLDER SEEN(0|1) FLAGS < message - Maildir
#       delivery into FOLDER (INBOX, or Junk etc. = DIR/home/USER/Maildir/
#       .FOLDER): written to tmp/, renamed into new/ (no flags) or
#       cur/NAME:2,<flags> where FLAGS letters are F=Flagged, R=Answered,
#       S=Seen (SEEN=1 adds S); prints the file name it created
#   dovecot_flags DIR USER FOLDER MESSAGE-ID - the IMAP flags doveadm sees

# dovecot_users DIR - uid:gid of the mail owner and the login users
_dovecot_ids() {
  if [ "$(id -u)" = 0 ]; then
    DC_LOGIN_USER=dovenull DC_INTERNAL_USER=dovecot DC_INTERNAL_GROUP=dovecot
    DC_MAIL_USER=nobody DC_CHROOT=login DC_ANVIL_CHROOT=empty
  else
    DC_LOGIN_USER=$(id -un) DC_INTERNAL_USER=$(id -un) DC_INTERNAL_GROUP=$(id -gn)
    DC_MAIL_USER=$(id -un) DC_CHROOT= DC_ANVIL_CHROOT=
  fi
  DC_MAIL_UID=$(id -u "$DC_MAIL_USER")
  DC_MAIL_GID=$(id -g "$DC_MAIL_USER")
}

start_dovecot() {
  local dir=$1 port=$2 sport=$3 certs=$4 junk=${5:-Junk} u i
  command -v dovecot >/dev/null || { echo "# dovecot is not installed (dovecot-imapd)"; return 1; }
  mkdir -p "$dir/run" "$dir/state" "$dir/home" "$dir/certs" || return 1
  dir=$(cd "$dir" && pwd)
  _dovecot_ids
  # as root, auth runs as dovecot and mail as nobody: they must traverse DIR
  [ "$(id -u)" = 0 ] && chmod 755 "$dir"
  cp "$certs/server.pem" "$dir/certs/server.pem" && cp "$certs/server.key" "$dir/certs/server.key" ||
    return 1
  chmod 600 "$dir/certs/server.key"
  # passwd-file: user:password:uid:gid::home::extra (PLAIN scheme: tests only)
  : >"$dir/users"
  for u in seed1@gmail.test seed2@gmail.test; do
    echo "$u:{PLAIN}password:$DC_MAIL_UID:$DC_MAIL_GID::$dir/home/$u::" >>"$dir/users"
    mkdir -p "$dir/home/$u/Maildir"
  done
  [ "$(id -u)" = 0 ] && chown -R "$DC_MAIL_UID:$DC_MAIL_GID" "$dir/home"
  cat >"$dir/dovecot.conf" <<EOC
# standalone test instance - nothing from /etc/dovecot is read
protocols = imap
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
instance_name = dovecot-test-$port
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
default_login_user = $DC_LOGIN_USER
default_internal_user = $DC_INTERNAL_USER
default_internal_group = $DC_INTERNAL_GROUP
first_valid_uid = $DC_MAIL_UID
last_valid_uid = $DC_MAIL_UID
ssl = yes
ssl_cert = <$dir/certs/server.pem
ssl_key = <$dir/certs/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
# tests log in with wrong passwords on purpose: no failure delay ...
auth_failure_delay = 0
# ... and no anvil auth penalty (see service anvil below)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
mail_location = maildir:~/Maildir
mail_privileged_group =
namespace inbox {
  inbox = yes
  separator = /
  mailbox "$junk" {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
}
service imap-login {
  chroot = $DC_CHROOT
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $sport
  }
}
service anvil {
  chroot = $DC_ANVIL_CHROOT
  # mode 0 removes the socket, which disables the auth penalty: otherwise,
  # after a failed login, the next logins from 127.0.0.1 wait 2..15 s
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
EOC
  # a restart appends to the log: remember where this start begins
  touch "$dir/dovecot.log"
  local from
  from=$(($(wc -c <"$dir/dovecot.log") + 1))
  dovecot -F -c "$dir/dovecot.conf" >>"$dir/dovecot.stdout" 2>&1 </dev/null &
  DOVECOT_PID=$!
  track "$DOVECOT_PID"
  for ((i = 0; i < 200; i++)); do
    tail -c +"$from" "$dir/dovecot.log" | grep -q "starting up" && return 0
    alive "$DOVECOT_PID" || break
    sleep 0.05
  done
  echo "# dovecot did not start"
  sed 's/^/#   /' "$dir/dovecot.log" "$dir/dovecot.stdout" | tail -20
  return 1
}

# _dovecot_children PID - PIDs whose parent is PID (from /proc)
_dovecot_children() {
  local f s
  for f in /proc/[0-9]*/stat; do
    { s=$(<"$f"); } 2>/dev/null || continue
    s=${s##*) }
    s=${s#* }
    if [ "${s%% *}" = "$1" ]; then
      f=${f#/proc/}
      echo "${f%/stat}"
    fi
  done
}

# stop_dovecot [PID] - stop the master (default $DOVECOT_PID) and its
# children. Dovecot 2.3's master exits on SIGTERM but leaves logged-in imap
# processes (and log, stats) running as orphans that keep serving their
# clients: they get a SIGTERM of their own (imap answers "* BYE Server
# shutting down"), as a real shutdown or crash of the server would do.
stop_dovecot() {
  local p=${1:-$DOVECOT_PID} kids k i rc
  kids=$(_dovecot_children "$p")
  stop_pid "$p" 15
  rc=$?
  for k in $kids; do alive "$k" && kill -TERM "$k" 2>/dev/null; done
  for k in $kids; do
    for ((i = 0; i < 200; i++)); do alive "$k" || break; sleep 0.025; done
    if alive "$k"; then echo "# dovecot child $k ignored SIGTERM, SIGKILL" >&2; kill -KILL "$k"; fi
  done
  return $rc
}

put_message() {
  local dir=$1 user=$2 folder=$3 seen=$4 flags=${5-} md name info
  md=$dir/home/$user/Maildir
  [ "$folder" = INBOX ] || md=$md/.$folder
  mkdir -p "$md/tmp" "$md/new" "$md/cur" || return 1
  [ "$folder" = INBOX ] || touch "$md/maildirfolder"
  name="$(date +%s).M$RANDOM$RANDOM.P$$.$(od -An -N4 -tu4 /dev/urandom | tr -d ' ').test"
  cat >"$md/tmp/$name" || return 1
  [ "$seen" = 1 ] && flags="${flags}S"
  # Maildir info flags are sorted in ASCII order (F, R, S), no duplicates
  info=$(printf '%s' "$flags" | fold -w1 | sort -u | tr -d '\n')
  _dovecot_ids
  [ "$(id -u)" = 0 ] && chown -R "$DC_MAIL_UID:$DC_MAIL_GID" "$dir/home/$user"
  if [ -n "$info" ]; then
    mv "$md/tmp/$name" "$md/cur/$name:2,$info" && echo "cur/$name:2,$info"
  else
    mv "$md/tmp/$name" "$md/new/$name" && echo "new/$name"
  fi
}

dovecot_flags() {
  doveadm -c "$1/dovecot.conf" -f flow fetch -u "$2" flags mailbox "$3" header Message-ID "$4" 2>&1
}
