#!/bin/sh
# check-banned.sh - fail when a banned C function is called anywhere in
# the project's sources (curl checksrc style): strcpy, strcat, sprintf,
# vsprintf, gets, strtok, atoi.
cd "$(dirname "$0")/.." || exit 2
files=$(git ls-files '*.c' '*.h' 2>/dev/null; find libshared warmup-service health-service deploy tests bench -name '*.[ch]' 2>/dev/null)
hits=$(printf '%s\n' $files | sort -u | xargs -r grep -nE '(^|[^_[:alnum:]])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi)[[:space:]]*\(' /dev/null)
if [ -n "$hits" ]; then
    echo "banned functions used:"
    echo "$hits"
    exit 1
fi
echo "check-banned: no banned function"
