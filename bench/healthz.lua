-- healthz.lua - GET /healthz under wrk: the HTTP floor of this machine.
-- usage: wrk ... -s healthz.lua http://HOST:PORT/healthz -- EVERY
-- Checks the first answer and every EVERY-th after it (check.lua).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "check.lua")

function init(args)
	every = tonumber(args[1] or "1000")
end

function expect(status, body)
	if status ~= 200 then
		return "not 200"
	end
	if not body:find('"status":"ok"', 1, true) then
		return 'no "status":"ok"'
	end
end
