-- wrk script for bench/whoami.sh.
--
--   wrk ... -s bench/whoami.lua URL -- MODE [FILE] [COOKIE_NAME]
--
-- MODE is "plain" (no credentials), "token" (X-Session-Token), "cookie" (a session cookie
-- named COOKIE_NAME) or "path" (FILE holds request paths, e.g. admin list queries for
-- bench/scale.sh). FILE holds one token or cookie value per line. Every request carries
-- the next value, so the load rotates over all sessions; each thread starts at a different
-- offset. Requests are pre-formatted in init() so that the client spends as little CPU as
-- possible (client and server share the machine).
--
-- done() prints one "WRK_RESULT key=value ..." line that whoami.sh parses. "non2xx" is wrk's
-- own count of responses with a status of 400 or more, which is cheap to collect; whoami.sh
-- additionally checks the server's per-status request counters.

local thread_counter = 0

function setup(thread)
   thread:set("thread_index", thread_counter)
   thread_counter = thread_counter + 1
end

local requests_cache = {}
local next_index = 1

function init(args)
   local mode = args[1] or "plain"
   local file = args[2]
   local cookie_name = args[3] or "ory_kratos_session"
   local path = wrk.path
   if mode == "plain" then
      requests_cache[1] = wrk.format("GET", path)
   else
      local fh = assert(io.open(file, "r"), "cannot open " .. tostring(file))
      for line in fh:lines() do
         if line ~= "" then
            local headers = { ["Accept"] = "application/json" }
            local target = path
            if mode == "path" then
               target = line
            elseif mode == "token" then
               headers["X-Session-Token"] = line
            elseif mode == "cookie" then
               headers["Cookie"] = cookie_name .. "=" .. line
            else
               error("unknown mode " .. mode)
            end
            requests_cache[#requests_cache + 1] = wrk.format("GET", target, headers)
         end
      end
      fh:close()
      assert(#requests_cache > 0, "no credentials in " .. file)
   end
   next_index = ((thread_index or 0) * 7) % #requests_cache + 1
end

function request()
   local r = requests_cache[next_index]
   next_index = next_index % #requests_cache + 1
   return r
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "WRK_RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f " ..
      "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout))
end
