#!/bin/sh
# install-deps.sh - install the Debian packages the build and the test suite need.
# Idempotent: only missing packages are installed; `apt-get update` runs first
# when anything is missing. Works without standard input (CI).
set -eu
PKGS="build-essential pkg-config meson ninja-build
librdkafka-dev kcat libmicrohttpd-dev libetpan-dev libjson-c-dev
libssl-dev libsqlite3-dev libidn2-dev sqlite3 curl python3 openssl
postfix dovecot-imapd python3-aiosmtpd wrk
prometheus docker-compose iproute2 procps
libopendkim-dev opendkim-tools python3-dkim tzdata libcurl4-gnutls-dev zlib1g-dev
libpq-dev postgresql"
# npm installs maildev (the mail catcher of `make all`) unless some node/npm is there
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then
    echo "deps: all packages present"
else
    echo "deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    # postfix: its smtp-sink/smtp-source tools, and private instances started by
    # test_bounces.sh (tests/fixtures/bounces/postfix_dsn.sh); no system daemon configured
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    $SUDO apt-get update -q </dev/null
    $SUDO apt-get install -y -q --no-install-recommends $missing </dev/null
fi
# maildev (npm, project-local .cache/maildev) for the integration tests
"$(dirname "$0")/install-maildev.sh"
# s3rver (npm, project-local .cache/s3rver): the S3-compatible server of test_upload.sh
"$(dirname "$0")/install-s3rver.sh"
