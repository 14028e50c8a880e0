-- translate.lua - POST /v1/machines/{id}/translate, one VA each, under wrk.
-- usage: wrk ... -s translate.lua http://HOST:PORT/ --
--            MACHINE PID START PAGES SEED EVERY
-- The addresses are a seeded random sequence over PAGES mapped 4 KiB
-- pages from START (hex) of process PID, any offset in the page: a pool
-- of 10,000 requests built in init(), sent in turn. Every answer must be
-- a translation (200, "ok":true, "pa":"0x..."); the first and every
-- EVERY-th are checked (check.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "check.lua")

local pool, n = {}, 0

function init(args)
	local machine, pid = args[1], tonumber(args[2])
	local start, pages = tonumber(args[3]), tonumber(args[4])
	local path = "/v1/machines/" .. machine .. "/translate"
	local headers = { ["Content-Type"] = "application/json" }

	math.randomseed(tonumber(args[5]))
	every = tonumber(args[6])
	for i = 1, 10000 do
		local va = start + math.random(0, pages - 1) * 4096 +
			math.random(0, 4095)
		pool[i] = wrk.format("POST", path, headers,
			string.format('{"va":"0x%x","pid":%d}', va, pid))
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
	if not body:find('"ok":true', 1, true) or
	   not body:find('"pa":"0x', 1, true) then
		return 'no "ok":true with "pa":"0x..."'
	end
end
