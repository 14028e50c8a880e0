#!/bin/bash
# http.sh - HTTP figures of vmlabd under wrk (keep-alive), one line each:
#   http_healthz_rps         GET /healthz (this machine's HTTP floor)
#   http_translate_rps       POST translate, one VA each
#   http_translate_p99_ms    its p99 latency
#   http_batch_tps           translations per second in batches of 1,000
# usage: bench/http.sh VMLABD [SECONDS]    (wrk from Debian's package)
# The daemon runs on 127.0.0.1 with a port it picks and is stopped by PID.
set -euo pipefail
vmlabd=${1:?usage: http.sh VMLABD [SECONDS]}
secs=${2:-${VMLAB_BENCH_SECONDS:-5}}
command -v wrk >/dev/null || { echo "http.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }

tmp=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$vmlabd" --listen 127.0.0.1:0 --db "$tmp/vmlab.db" 2>"$tmp/err" &
pid=$!
for _ in $(seq 200); do
	port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\)\/.*/\1/p' "$tmp/err")
	[[ -n $port ]] && break
	sleep 0.05
done
[[ -n $port ]] || { cat "$tmp/err" >&2; exit 1; }
base=http://127.0.0.1:$port

# A machine with one process and 10,000 mapped 4 KiB pages.
curl -sf -X POST "$base/v1/machines" -d '{"id":"bench","seed":1}' >/dev/null
curl -sf -X POST "$base/v1/machines/bench/processes" -d '{"name":"bench"}' >/dev/null
start=$(curl -sf -X POST "$base/v1/machines/bench/processes/1/mmap" \
	-d '{"length":40960000}' | sed 's/.*"start":"\(0x[0-9a-f]*\)".*/\1/')

# Seeded addresses inside the mapping; the Lua scripts pick among them.
cat >"$tmp/translate.lua" <<LUA
local base = $((start))
math.randomseed(42)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local va = base + math.random(0, 9999) * 4096 + math.random(0, 4095)
  return wrk.format(nil, "/v1/machines/bench/translate",
    nil, string.format('{"va":"0x%x","pid":1}', va))
end
LUA
cat >"$tmp/batch.lua" <<LUA
local base = $((start))
math.randomseed(43)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for b = 1, 16 do
  local items = {}
  for i = 1, 1000 do
    items[i] = string.format('{"va":"0x%x","pid":1}',
      base + math.random(0, 9999) * 4096 + math.random(0, 4095))
  end
  bodies[b] = '{"items":[' .. table.concat(items, ",") .. ']}'
end
local n = 0
request = function()
  n = n % 16 + 1
  return wrk.format(nil, "/v1/machines/bench/translate/batch", nil, bodies[n])
end
LUA
cat >"$tmp/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, summary.errors.status))
end
LUA

run() { # script-or-empty path -> "rps p99ms errors"
	local s=()
	[[ -n $1 ]] && s=(-s "$1")
	wrk -t1 -c32 -d"${secs}s" --latency "${s[@]}" "$base$2" 2>&1 | sed -n 's/^RESULT //p'
}
cat "$tmp/report.lua" >>"$tmp/translate.lua"
cat "$tmp/report.lua" >>"$tmp/batch.lua"
cp "$tmp/report.lua" "$tmp/get.lua"

read -r h_rps _ h_err < <(run "$tmp/get.lua" /healthz)
read -r t_rps t_p99 t_err < <(run "$tmp/translate.lua" /)
read -r b_rps _ b_err < <(run "$tmp/batch.lua" /)
printf 'http_healthz_rps %s req/s\n' "$h_rps"
printf 'http_translate_rps %s req/s\n' "$t_rps"
printf 'http_translate_p99_ms %s ms\n' "$t_p99"
printf 'http_batch_tps %.0f translations/s\n' "$(echo "$b_rps * 1000" | bc -l 2>/dev/null || awk "BEGIN{print $b_rps*1000}")"
if [[ $h_err != 0 || $t_err != 0 || $b_err != 0 ]]; then
	echo "http.sh: non-2xx answers: healthz $h_err translate $t_err batch $b_err" >&2
	exit 1
fi
