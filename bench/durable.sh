#!/bin/bash
# durable.sh - durable mutations under wrk (keep-alive), one line each:
#   durable_mut_1c           kmalloc/s, 1 client on 1 machine
#   durable_mut_16c          kmalloc/s, 16 clients on 16 machines
#   durable_mut_16c_single   the same, one transaction per mutation
#                            (--group-commit off): what group commit buys
#   durable_mut_1c_single    one client, one transaction per mutation
#   durable_syncs_per_op     transactions per acknowledged mutation (16c)
# usage: bench/durable.sh VMLABD [SECONDS]   (wrk from Debian's package)
# Durability FULL (the default); the database is in a temporary folder on
# the same disk as the build (TMPDIR). Daemons bind 127.0.0.1 on ports they
# pick and are stopped by PID.
set -euo pipefail
vmlabd=${1:?usage: durable.sh VMLABD [SECONDS]}
secs=${2:-${VMLAB_BENCH_SECONDS:-5}}
command -v wrk >/dev/null || { echo "durable.sh: needs wrk" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-$PWD}/durable.XXXXXX")
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # extra vmlabd args
	rm -f "$tmp"/v.db*
	"$vmlabd" --listen 127.0.0.1:0 --db "$tmp/v.db" "$@" 2>"$tmp/err" &
	pid=$!
	port=
	for _ in $(seq 200); do
		port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)\/.*/\1/p' "$tmp/err")
		[[ -n $port ]] && break
		sleep 0.05
	done
	[[ -n $port ]] || { cat "$tmp/err" >&2; exit 1; }
	base=http://127.0.0.1:$port
	for i in $(seq 0 15); do
		curl -sf -X POST "$base/v1/machines" \
			-d "{\"id\":\"d$i\",\"memory\":\"256MiB\",\"churn\":0}" >/dev/null
	done
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

cat >"$tmp/kmalloc.lua" <<'LUA'
local n, machines = 0, tonumber(os.getenv("MACHINES") or "1")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/machines/d" .. (n % machines) .. "/kmalloc",
    nil, '{"size":64}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %d\n",
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
LUA
run() { # connections machines
	MACHINES=$2 wrk -t1 -c"$1" -d"${secs}s" -s "$tmp/kmalloc.lua" "$base/" 2>&1 |
		sed -n 's/^RESULT //p'
}
metric() { curl -sf "$base/metrics" | sed -n "s/^$1 //p"; }

start
read -r one e1 < <(run 1 1)
t0=$(metric vmlab_db_transactions_total); o0=$(metric vmlab_durable_operations_total)
read -r many e2 < <(run 16 16)
t1=$(metric vmlab_db_transactions_total); o1=$(metric vmlab_durable_operations_total)
stop
start --group-commit off
read -r single e3 < <(run 16 16)
read -r single1 e4 < <(run 1 1)
stop
printf 'durable_mut_1c %s kmalloc/s\n' "$one"
printf 'durable_mut_16c %s kmalloc/s\n' "$many"
printf 'durable_mut_16c_single %s kmalloc/s\n' "$single"
printf 'durable_mut_1c_single %s kmalloc/s\n' "$single1"
awk -v t=$((t1 - t0)) -v o=$((o1 - o0)) 'BEGIN { printf "durable_syncs_per_op %.3f\n", o ? t / o : 0 }'
if [[ $e1 != 0 || $e2 != 0 || $e3 != 0 ]]; then
	echo "durable.sh: non-2xx answers: $e1 $e2 $e3" >&2
	exit 1
fi
