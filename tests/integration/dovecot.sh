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
#   lda_deliver DIR USER FOLDER < message - real delivery through
#       dovecot-lda with the instance's config (-d USER -m FOLDER; INBOX
#       for the inbox): as a mail server delivers; prints nothing on
#       success, the LDA's complaint and status 1 on failure
#
# start_dovecot also reads, when set (existing calls need none of them):
#   DC_USERS="a@x.test b@y.test"  the users (default seed1@gmail.test
#       seed2@gmail.test), each with password "password"; or
#   DC_NUSERS=N DC_USER_FMT=FMT  N users named by printf FMT (1..N), e.g.
#       DC_USER_FMT=seed%04d@gmail.test; one passwd-file, one mkdir
#   DC_LAYOUT=gmail    "[Gmail]/Spam" \Junk, "[Gmail]/All Mail" \All,
#                      "[Gmail]/Sent Mail" \Sent, "[Gmail]/Trash" \Trash
#             outlook  "Junk Email" \Junk, "Sent Items" \Sent,
#                      "Deleted Items" \Trash
#             byname   no \Junk: "Junk E-mail" (no SPECIAL-USE), Spam \Trash
#                      (a trap for a search by name), "Sent Items" \Sent
#             default  JUNK (the 5th argument, default Junk) \Junk, Sent \Sent
#   DC_NO_MOVE=1       the server does not announce MOVE after login
#   DC_NO_UIDPLUS=1    ... nor UIDPLUS (neither: no safe way to move one message)
#   DC_OAUTH2_URL=URL  passdb oauth2 (SASL XOAUTH2 and OAUTHBEARER) with
#       the token introspection endpoint URL (POST token=..., answer
#       {"active":true,"username":USER}; oauth2_introspect.py), beside
#       the passwd-file passdb
#   DC_IMAP_CLIENTS=N  N sessions per imap process (service_count = 0):
#       a login then costs ~2.5 ms instead of ~25 ms (a process start), but
#       doveadm kick of one user ends the others in the same process
#   DC_EXTRA_CONF=TEXT appended to dovecot.conf
# Limits: up to 1,100 simultaneous IMAP sessions (one imap process each
# unless DC_IMAP_CLIENTS; imap-login in high-performance mode).

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
  local users=() mdirs=() junkmb
  if [ -n "${DC_NUSERS-}" ]; then
    for ((i = 1; i <= DC_NUSERS; i++)); do
      # shellcheck disable=SC2059
      printf -v u "${DC_USER_FMT:-seed%d@gmail.test}" "$i"
      users+=("$u")
    done
  else
    read -r -a users <<<"${DC_USERS:-seed1@gmail.test seed2@gmail.test}"
  fi
  for u in "${users[@]}"; do
    printf '%s:{PLAIN}password:%s:%s::%s::\n' "$u" "$DC_MAIL_UID" "$DC_MAIL_GID" "$dir/home/$u"
    mdirs+=("$dir/home/$u/Maildir")
  done >"$dir/users"
  mkdir -p "${mdirs[@]}" || return 1
  [ "$(id -u)" = 0 ] && chown -R "$DC_MAIL_UID:$DC_MAIL_GID" "$dir/home"
  case ${DC_LAYOUT:-default} in
  gmail) junkmb='  mailbox "[Gmail]/Spam" {
    special_use = \Junk
    auto = subscribe
  }
  mailbox "[Gmail]/All Mail" {
    special_use = \All
    auto = subscribe
  }
  mailbox "[Gmail]/Sent Mail" {
    special_use = \Sent
    auto = subscribe
  }
  mailbox "[Gmail]/Trash" {
    special_use = \Trash
    auto = subscribe
  }' ;;
  outlook) junkmb='  mailbox "Junk Email" {
    special_use = \Junk
    auto = subscribe
  }
  mailbox "Sent Items" {
    special_use = \Sent
    auto = subscribe
  }
  mailbox "Deleted Items" {
    special_use = \Trash
    auto = subscribe
  }' ;;
  byname) junkmb='  mailbox "Junk E-mail" {
    auto = subscribe
  }
  mailbox Spam {
    special_use = \Trash
    auto = subscribe
  }
  mailbox "Sent Items" {
    special_use = \Sent
    auto = subscribe
  }' ;;
  default) junkmb="  mailbox \"$junk\" {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }" ;;
  *) echo "# DC_LAYOUT must be gmail, outlook, byname or default"; return 1 ;;
  esac
  # the post-login capabilities: Dovecot 2.3's own list, without MOVE
  local caps= mechs="plain login" oauth= imapsvc=
  # N sessions per imap process (all users share one uid): no process
  # start per login
  [ -n "${DC_IMAP_CLIENTS-}" ] && imapsvc="  service_count = 0
  client_limit = $DC_IMAP_CLIENTS"
  [ "${DC_NO_MOVE-}" = 1 ] || [ "${DC_NO_UIDPLUS-}" = 1 ] && caps="imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
  [ "${DC_NO_UIDPLUS-}" = 1 ] && caps=${caps/ UIDPLUS/}
  if [ -n "${DC_OAUTH2_URL-}" ]; then
    mechs="plain login xoauth2 oauthbearer"
    cat >"$dir/oauth2.conf.ext" <<EOO
introspection_mode = post
introspection_url = $DC_OAUTH2_URL
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
EOO
    oauth="passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $dir/oauth2.conf.ext
}"
  fi
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
auth_mechanisms = $mechs
$caps
postmaster_address = postmaster@dovecot.test.invalid
hostname = dovecot.test.invalid
lda_mailbox_autocreate = yes
# many seed mailboxes log in at once (the seed-mailbox benchmark: 1,000)
default_process_limit = 1100
default_client_limit = 4000
mail_max_userip_connections = 100
# tests log in with wrong passwords on purpose: no failure delay ...
auth_failure_delay = 0
# ... and no anvil auth penalty (see service anvil below)
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u $dir/users
}
$oauth
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
mail_location = maildir:~/Maildir
mail_privileged_group =
namespace inbox {
  inbox = yes
  separator = /
$junkmb
}
service imap {
  process_limit = 1100
$imapsvc
}
service imap-login {
  chroot = $DC_CHROOT
  # high-performance mode: a few login processes serve every client
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
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
${DC_EXTRA_CONF-}
EOC
  # a restart appends to the log: remember where this start begins
  touch "$dir/dovecot.log"
  local from
  from=$(($(wc -c <"$dir/dovecot.log") + 1))
  # one descriptor per session and more: the highest limit allowed
  (ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec dovecot -F -c "$dir/dovecot.conf") \
    >>"$dir/dovecot.stdout" 2>&1 </dev/null &
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
  # Maildir++: the hierarchy separator "/" is "." on disk
  [ "$folder" = INBOX ] || md=$md/.${folder//\//.}
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

# lda_deliver DIR USER FOLDER < message - dovecot-lda with the instance's
# config: as root it looks USER up through the running instance's auth
# service and writes as the mail owner (nobody); unprivileged, as itself
lda_deliver() {
  local dir=$1 user=$2 folder=$3 lda=/usr/lib/dovecot/dovecot-lda out
  [ -x "$lda" ] || lda=$(command -v dovecot-lda) || { echo "dovecot-lda is missing"; return 1; }
  # -e: a failure is an exit status and a message, never a bounce
  if ! out=$("$lda" -c "$dir/dovecot.conf" -e -d "$user" -m "$folder" 2>&1); then
    echo "lda_deliver $user $folder: ${out:-failed}"
    return 1
  fi
  [ -z "$out" ] || echo "$out"
}
