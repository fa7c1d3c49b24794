#!/usr/bin/env bash
# Stop the live writer the way a VM is shut down: SIGTERM, then wait until it has flushed and exited
# (it removes its pid file last). Used by both methods in the downtime bench.
set -euo pipefail
pidfile=$1
pid=$(cat "$pidfile")
kill -TERM "$pid"
while [ -e "$pidfile" ]; do sleep 0.002; done
