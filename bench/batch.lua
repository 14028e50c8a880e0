-- batch.lua - POST /v1/machines/{id}/translate/batch under wrk.
-- usage: wrk ... -s batch.lua http://HOST:PORT/ --
--            MACHINE PID START PAGES SEED EVERY ITEMS
-- Each batch holds ITEMS addresses from a seeded random sequence over
-- PAGES mapped 4 KiB pages from START (hex) of process PID: a pool of 32
-- batches built in init(), sent in turn. Every item must translate; the
-- first answer and every EVERY-th are checked item by item (check.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "check.lua")

local pool, n, items = {}, 0, 0

function init(args)
	local machine, pid = args[1], tonumber(args[2])
	local start, pages = tonumber(args[3]), tonumber(args[4])
	local path = "/v1/machines/" .. machine .. "/translate/batch"
	local headers = { ["Content-Type"] = "application/json" }

	math.randomseed(tonumber(args[5]))
	every = tonumber(args[6])
	items = tonumber(args[7])
	for b = 1, 32 do
		local v = {}
		for i = 1, items do
			v[i] = string.format('{"va":"0x%x","pid":%d}',
				start + math.random(0, pages - 1) * 4096 +
				math.random(0, 4095), pid)
		end
		pool[b] = wrk.format("POST", path, headers,
			'{"items":[' .. table.concat(v, ",") .. ']}')
	end
end

function request()
	n = n % #pool + 1
	return pool[n]
end

function expect(status, body)
	if status ~= 200 then
		return "not 200"
	end
	local _, ok = body:gsub('"ok":true', "")
	local _, pa = body:gsub('"pa":"0x', "")
	if ok ~= items or pa ~= items then
		return string.format('%d items answered "ok":true and %d ' ..
			'"pa":"0x...", not %d', ok, pa, items)
	end
end
