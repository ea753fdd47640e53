#!/usr/bin/env bash
# Outbound load test: requests/s and latency through modulus_api against the
# same qrphgate binary's plain reverse_proxy to the same fast upstream
# stand-in, in one run on one machine. Usage (from the repository root):
#
#   bench/outbound/run.sh            # DURATION=20s CONNS=64 THREADS=2 ROUNDS=3
#   PROFILE=/tmp/api.pprof bench/outbound/run.sh   # also a CPU profile of the
#                                    # gateway during the first modulus_api round
#   STORE=redis://127.0.0.1:6379/0 bench/outbound/run.sh   # modulus_api's store
#                                    # (default memory; file:///path or a Redis URL)
#
# Needs wrk (apt-get install -y wrk). Both targets get the same wrk script
# (unique references, so modulus_api never answers from its idempotency
# cache); rounds alternate plain/modulus_api to share the machine's noise.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
STORE=${STORE:-memory}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== building"
go build -o "$work/qrphgate" ./cmd/qrphgate
go build -o "$work/standin" ./bench/outbound/standin

upstream=$(free_port); api=$(free_port); plain=$(free_port); admin=$(free_port)
"$work/standin" -addr "127.0.0.1:$upstream" 2>"$work/standin.log" &
pids+=($!)

export BENCH_SECRET_KEY=sk_test_FAKEbenchFAKEbenchFAKEbench000000000
export BENCH_ENCRYPTION_KEY=TEST-ONLY-fake-key-do-not-use-32
export BENCH_ACTIVATION_CODE=A9X4-B7P2-Q6Z8-M3L5
cat >"$work/Caddyfile" <<CADDY
{
	admin 127.0.0.1:$admin
	log {
		level ERROR
	}
}
# The gateway: a rate limit high enough never to throttle.
http://127.0.0.1:$api {
	modulus_api {
		environment     sandbox
		secret_key      {env.BENCH_SECRET_KEY}
		encryption_key  {env.BENCH_ENCRYPTION_KEY}
		activation_code {env.BENCH_ACTIVATION_CODE}
		qr_url          http://127.0.0.1:$upstream
		rate_limit      100000000/1m
		max_queue       100000
		store           $STORE
	}
}
# Plain Caddy: the same binary's reverse_proxy to the same stand-in.
http://127.0.0.1:$plain {
	reverse_proxy 127.0.0.1:$upstream
}
CADDY
"$work/qrphgate" run --config "$work/Caddyfile" --adapter caddyfile >"$work/qrphgate.log" 2>&1 &
gateway=$!
pids+=($gateway)
for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$admin/config/" >/dev/null 2>&1 && break
	sleep 0.1
done
check=$(curl -fsS -H 'Content-Type: application/json' -d '{"amount":"500.00","currency":"PHP","merchantReferenceNumber":"CHECK-1"}' "http://127.0.0.1:$api/v1/pay/qr")
case "$check" in *'"qrBody"'*) ;; *) echo "modulus_api does not answer: $check" >&2; cat "$work/qrphgate.log" >&2; exit 1 ;; esac

run() { # name port duration
	RUN="$1-$RANDOM$RANDOM" wrk -t"$THREADS" -c"$CONNS" -d"$3" --latency -s bench/outbound/create.lua "http://127.0.0.1:$2" >"$work/$1.out"
}
field() { # file: requests/s, p50, p99, errors, requests
	awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /non-2xx-or-errors/ {err=$2} / requests in / {n=$1} END {print rps, p50, p99, err, n}' "$1"
}
# The gateway's CPU time (user+system, clock ticks): per request it is a
# steadier comparison than requests/s on a machine shared with other work.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$gateway/stat"; }
hz=$(getconf CLK_TCK)

echo "== warm-up ($WARMUP each)"
run warm-plain "$plain" "$WARMUP"; run warm-api "$api" "$WARMUP"

echo "== measuring: $ROUNDS rounds x $DURATION, wrk -t$THREADS -c$CONNS, $(nproc) CPUs"
printf '%-8s %-14s %12s %10s %10s %8s %14s\n' round target 'requests/s' p50 p99 errors 'gateway-CPU/req' 
sum_plain=0; sum_api=0
for r in $(seq 1 "$ROUNDS"); do
	for target in plain api; do
		port=$plain; [ "$target" = api ] && port=$api
		if [ -n "${PROFILE:-}" ] && [ "$target" = api ] && [ "$r" = 1 ]; then
			secs=$(( ${DURATION%s} > 2 ? ${DURATION%s} - 2 : 1 ))
			curl -fsS "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$secs" -o "$PROFILE" &
		fi
		c0=$(cpu_ticks)
		run "$target-$r" "$port" "$DURATION"
		c1=$(cpu_ticks)
		read -r rps p50 p99 err n < <(field "$work/$target-$r.out")
		us=$(echo "($c1 - $c0) * 1000000 / $hz / $n" | bc)
		label=reverse_proxy; [ "$target" = api ] && label=modulus_api
		printf '%-8s %-14s %12s %10s %10s %8s %12sus\n' "$r" "$label" "$rps" "$p50" "$p99" "$err" "$us"
		if [ "$target" = api ]; then sum_api=$(echo "$sum_api + $rps" | bc -l); else sum_plain=$(echo "$sum_plain + $rps" | bc -l); fi
	done
done
ratio=$(echo "scale=3; $sum_api / $sum_plain" | bc -l)
echo "== modulus_api / reverse_proxy throughput: $ratio (target >= 0.85)"
