#!/bin/sh
# install-s3rver.sh - install s3rver 3.x (an S3-compatible server, used
# by test_upload.sh for UPLOAD_STORE=s3://) with npm into the project-local folder
# .cache/s3rver/node_modules (ignored by git). Idempotent: does nothing when
# s3rver is already there; skips with a note when npm is not installed.
# The install goes to a temporary folder that is renamed into place only when
# npm succeeded, so an interrupted run never leaves a half-installed s3rver.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/.cache/s3rver"
MAIN="$DEST/node_modules/s3rver/bin/s3rver.js"
VERSION="${S3RVER_VERSION:-3}"

if [ -f "$MAIN" ]; then
    echo "s3rver: present in .cache/s3rver"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "s3rver: npm/node not found, skipped (the S3 part of test_upload.sh will be skipped)"
    exit 0
fi
mkdir -p "$ROOT/.cache"
TMPD=$(mktemp -d "$ROOT/.cache/s3rver.tmp.XXXXXX")
trap 'rm -rf "$TMPD"' EXIT
echo "s3rver: npm install s3rver@$VERSION into .cache/s3rver"
# --prefix with an empty folder: npm writes package.json + node_modules there
npm install --prefix "$TMPD" --no-audit --no-fund --loglevel=error "s3rver@$VERSION" </dev/null
[ -f "$TMPD/node_modules/s3rver/bin/s3rver.js" ] || {
    echo "s3rver: npm finished but s3rver.js is missing" >&2
    exit 1
}
rm -rf "$DEST"
mv "$TMPD" "$DEST"
trap - EXIT
echo "s3rver: installed $(node -p "require('$DEST/node_modules/s3rver/package.json').version")"
