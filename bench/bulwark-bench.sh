#!/usr/bin/env bash
# bulwark-bench.sh - starts Bulwark as a ../shared/bench `cmd:` target.
# The harness sets PORT AUTH_ADDR AUTH_PORT POLICY_DOMAINS RUNDIR; this writes a config
# equivalent to the peers' (one worker, forward "." to the harness's authoritative
# server, no DNSSEC: the bench root is unsigned, the policy's domain list as one feed)
# and execs the daemon so the harness measures its PID.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BULWARK=${BULWARK:-$HERE/../build/bulwark}
cat > "$RUNDIR/bulwark.yaml" <<YAML
server:
  listen: [ { address: 127.0.0.1, port: $PORT } ]
  workers: ${BENCH_WORKERS:-1}
resolver:
  mode: forward
  dnssec: false
  forward: [ "$AUTH_ADDR@$AUTH_PORT" ]
  qname-minimisation: false
  prefetch: false
cache: { size: 1G, max-ttl: 1d }
policy:
  feeds:
    - { name: bench, category: malware, format: domains, file: "$POLICY_DOMAINS" }
  watch-interval: 0
log: { level: warning }
YAML
exec "$BULWARK" -f -c "$RUNDIR/bulwark.yaml"
