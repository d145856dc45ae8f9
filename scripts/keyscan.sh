#!/usr/bin/env bash
# Fails if a file contains anything shaped like a keygate API key (any
# prefix): the tests must never print a raw key. Prints only line numbers.
set -euo pipefail
pattern='(^|[^0-9A-Za-z_])[a-z][a-z0-9]{0,9}_[0-9A-Za-z]{50}([^0-9A-Za-z]|$)'
for f in "$@"; do
  if lines=$(grep -nE "$pattern" "$f" | cut -d: -f1 | head -20 | paste -sd, -); [ -n "$lines" ]; then
    echo "keyscan: $f contains text shaped like a raw API key on line(s) $lines" >&2
    exit 1
  fi
done
echo "keyscan: no raw API key in $*"
