#!/usr/bin/env bash
# Every comparison of the performance targets in one run (see
# docs/performance.md): outbound modulus_api against plain reverse_proxy,
# the Redis store against memory, inbound modulus_webhook over TLS against a
# plain TLS reverse_proxy, and the footprint. Usage, from anywhere:
#
#   bench/run.sh                          # about 4 minutes
#   bench/run.sh -rounds 2 -duration 5s   # shorter
#   bench/run.sh -only footprint          # one part (outbound, inbound, footprint)
#   bench/run.sh -cpuprofile /tmp/mixed.pprof   # and a profile of a mixed load
#
# Needs Go and, for the Redis comparison, a Redis server on 127.0.0.1:6379
# (-redis host:port; -redis '' skips it). Nothing else: the load generator,
# the fake provider and the fake app are in bench/compare.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
exec go run ./bench/compare "$@"
