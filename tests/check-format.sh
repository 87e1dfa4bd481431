#!/bin/sh
# check-format.sh - fail when a C file differs from .clang-format's layout.
cd "$(dirname "$0")/.." || exit 2
command -v clang-format >/dev/null 2>&1 || { echo "check-format: clang-format not installed, skipped"; exit 0; }
files=$(find libshared warmup-service health-service deploy tests bench -name '*.[ch]' 2>/dev/null | sort)
[ -z "$files" ] && exit 0
if ! clang-format --dry-run --Werror $files; then
    echo "check-format: run 'make format'"
    exit 1
fi
echo "check-format: $(echo "$files" | wc -l) files formatted"
