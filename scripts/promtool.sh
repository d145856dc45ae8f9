#!/usr/bin/env bash
# Provides promtool for observe/'s tests: see scripts/prometheus.sh.
exec "$(dirname "$0")/prometheus.sh" promtool "$@"
