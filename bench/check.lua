-- check.lua - what the wrk scripts of bench/ share (dofile'd by each).
--
-- While wrk runs, a sample of the answers is checked: the first one and
-- every `every`-th after it (each script sets `every` from its arguments
-- and defines expect(status, body), which returns nil for a good answer
-- or says what is wrong). done() prints one line the driver (run.py)
-- reads, `VMLAB_WRK key=value ...`, and the first wrong answer on a line
-- `VMLAB_WRK_BAD ...`; the driver fails the run if any was wrong.
--
-- wrk runs this file in one Lua state per thread, where response() runs,
-- and in a main one, where setup() and done() run: done() reads each
-- thread's counters with thread:get.

local threads = {}

-- Each thread learns its index (0, 1, ...), for scripts that pin a
-- thread to a machine.
function setup(thread)
	thread:set("thread_index", #threads)
	table.insert(threads, thread)
end

every, seen, checked, bad, first_bad = 1000, 0, 0, 0, ""

function response(status, headers, body)
	seen = seen + 1
	if (seen - 1) % every ~= 0 then
		return
	end
	checked = checked + 1
	local why = expect(status, body or "")
	if why then
		bad = bad + 1
		if first_bad == "" then
			first_bad = string.format("%s (status %d): %s", why,
				status, (body or ""):sub(1, 300):gsub("%s+", " "))
		end
	end
end

function done(summary, latency, requests)
	local n_checked, n_bad, first = 0, 0, ""
	for _, t in ipairs(threads) do
		n_checked = n_checked + t:get("checked")
		n_bad = n_bad + t:get("bad")
		if first == "" then
			first = t:get("first_bad")
		end
	end
	local e = summary.errors
	io.write(string.format("VMLAB_WRK requests=%d seconds=%.6f " ..
		"rps=%.1f p50_ms=%.3f p99_ms=%.3f status_errors=%d " ..
		"connect_errors=%d read_errors=%d write_errors=%d " ..
		"timeouts=%d checked=%d bad=%d\n",
		summary.requests, summary.duration / 1e6,
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		e.status, e.connect, e.read, e.write, e.timeout,
		n_checked, n_bad))
	if n_bad > 0 then
		io.write("VMLAB_WRK_BAD " .. first .. "\n")
	end
end

