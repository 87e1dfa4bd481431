#!/bin/sh
# install-maildev.sh - install maildev 3.x (SMTP catcher with a REST API, used
# by the integration tests) with npm into the project-local folder
# .cache/maildev/node_modules (ignored by git). Idempotent: does nothing when
# maildev is already there; skips with a note when npm is not installed.
# The install goes to a temporary folder that is renamed into place only when
# npm succeeded, so an interrupted run never leaves a half-installed maildev.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/.cache/maildev"
MAIN="$DEST/node_modules/maildev/dist/bin/maildev.js"
VERSION="${MAILDEV_VERSION:-3}"

if [ -f "$MAIN" ]; then
    echo "maildev: present in .cache/maildev"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "maildev: npm/node not found, skipped (maildev integration tests will be skipped)"
    exit 0
fi
mkdir -p "$ROOT/.cache"
TMPD=$(mktemp -d "$ROOT/.cache/maildev.tmp.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT
echo "maildev: npm install maildev@$VERSION into .cache/maildev"
# --prefix with an empty folder: npm writes package.json + node_modules there
npm install --prefix "$TMPD" --no-audit --no-fund --loglevel=error "maildev@$VERSION" </dev/null
[ -f "$TMPD/node_modules/maildev/dist/bin/maildev.js" ] || {
    echo "maildev: npm finished but maildev.js is missing" >&2
    exit 1
}
rm -rf "$DEST"
mv "$TMPD" "$DEST"
trap - EXIT
echo "maildev: installed $(node -p "require('$DEST/node_modules/maildev/package.json').version")"
