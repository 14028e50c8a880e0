-- kmalloc.lua - durable mutations under wrk: POST /v1/machines/{id}/kmalloc.
-- usage: wrk -tN -cN ... -s kmalloc.lua http://HOST:PORT/ -- PREFIX EVERY
-- Thread k works on machine PREFIX..k (so with -tN -cN, N clients on N
-- machines, one each), asking 64 bytes each time. Every answer must be
-- 201 with "pa":"0x..."; the first and every EVERY-th are checked
-- (check.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "check.lua")

local req

function init(args)
	every = tonumber(args[2])
	req = wrk.format("POST", "/v1/machines/" .. args[1] .. thread_index ..
		"/kmalloc", { ["Content-Type"] = "application/json" },
		'{"size":64}')
end

function request()
	return req
end

function expect(status, body)
	if status ~= 201 then
		return "not 201"
	end
	if not body:find('"pa":"0x', 1, true) then
		return 'no "pa":"0x..."'
	end
end
