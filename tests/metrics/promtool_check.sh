#!/bin/sh
# promtool_check.sh SAMPLE_PROGRAM OUTFILE - runs the sample exposition program and checks its
# text with `promtool check metrics`. Fails (never skips) when promtool is missing.
set -eu
prog=$1
out=$2
if ! command -v promtool >/dev/null 2>&1; then
    echo "promtool not found: apt-get install prometheus (it ships /usr/bin/promtool)" >&2
    exit 1
fi
"$prog" >"$out"
if [ ! -s "$out" ]; then
    echo "$prog printed nothing" >&2
    exit 1
fi
promtool check metrics <"$out"
