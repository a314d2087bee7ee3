-- `retape serve`: the original worker's replay endpoints over HTTP, so the
-- app's own client (scripts/replay-ingest.js) and views work against retape.
-- Registered into retape.cli by calling this module with it.
local args = require "retape.args"
local json = require "retape.json"
local options = require "retape.cli.options"

local function read_key(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local key = f:read("a"):gsub("%s+$", "")
  f:close()
  if key == "" then return nil, path .. ": empty key file" end
  return key
end

return function(cli)
  local command, out, fail = cli.command, cli.out, cli.fail

  command("serve", {
    summary = "Serve the original replay and webhook endpoints over HTTP (a drop-in backend; retape live)",
    usage = "retape serve --db FILE --state DIR [--listen 127.0.0.1:8787] [--rules NAME|FILE] [--set K=V]... "
         .. "[--key-file FILE | --no-auth]",
    details = "POST /timed/admin/replay-ingest (date, ticker, bucket, bucketOffset, limit, scriptVersion,\n"
           .. "cleanSlate, debug), /timed/admin/refresh-latest-from-ingest, /timed/admin/force-sync (the ledger\n"
           .. "sync); GET /timed/all, /timed/latest?ticker=, /timed/trades, /timed/ledger/trades, /timed/health,\n"
           .. "/timed/version, and retape's /retape/lanes?date&at, /retape/trades?by=day|pnl|history, /retape/runs.\n"
           .. "Live: POST /timed/ingest (a TradingView webhook: ticker non-empty, ts, htf_score, ltf_score numeric,\n"
           .. "else 400 naming the field; stored byte for byte as receipt T:ts:fnv(body) with INSERT OR IGNORE;\n"
           .. "200 {ok, receipt_id, ticker, ts, bucket_5m, duplicate} once committed, webhooks arriving together\n"
           .. "stored in one transaction), POST /timed/ingest-capture (stored under its own script_version, never\n"
           .. "replayed).  Stored receipts are replayed at once, in passes that each cover every batch stored since\n"
           .. "the last; a read (GET) waits for the pass covering the webhooks answered before it, so it reflects\n"
           .. "them, and sees the store only as a whole pass left it (X-Retape-Receipts: ROWID says which receipts:\n"
           .. "the file's rows up to ROWID; a pass reads one snapshot of the file).  GET / the live board (lanes,\n"
           .. "Trade By Day / By P&L / History), /live/board (its data), /live/events (server-sent events, one per\n"
           .. "pass).  The store stays equal to one fresh `retape replay` of the receipts stored so far (check:\n"
           .. "retape replay into a second --state, then retape diff).  A new --db file is created.\n"
           .. "Admin, live and /retape/ endpoints need ?key= (from --key-file or RETAPE_API_KEY; --no-auth only on a\n"
           .. "loopback address).  One replay at a time (409 otherwise); reads go on during it, each on a\n"
           .. "snapshot of the store.  One access-log line per request on stderr.  SIGTERM/SIGINT answer the\n"
           .. "webhooks being stored (503 for those queued), finish the live pass in progress and one last pass\n"
           .. "over what was stored, finish an admin replay's bucket in progress, commit, and exit 0.",
    options = options.list(options.store("receipts database (ingest_receipts; created if absent)"),
      { name = "listen", arg = "HOST:PORT", help = "IPv4 address and port", default = "127.0.0.1:8787" },
      options.ruleset(), {
      { name = "ledger", arg = "FILE", help = "SQLite ledger of force-sync and /timed/ledger/trades (default: DIR.ledger.db)" },
      { name = "key-file", arg = "FILE", help = "file holding the API key (else RETAPE_API_KEY)" },
      { name = "no-auth", type = "flag", help = "serve without a key (loopback addresses only)" },
      { name = "threads", arg = "N", type = "integer", help = "server threads (default: cores + 1, one for the writer)" },
      { name = "max-body", arg = "BYTES", type = "integer", help = "larger request bodies answer 413", default = 65536 },
      { name = "max-header", arg = "BYTES", type = "integer", help = "larger URL + headers answer 431", default = 8192 },
      { name = "timeout", arg = "S", type = "integer", help = "idle connection timeout in seconds", default = 30 },
      { name = "request-timeout", arg = "S", type = "integer", default = 10,
        help = "a request's headers and body must arrive within S seconds (of the connection opening, or of the previous answer); slower clients are cut off" },
      { name = "max-connections", arg = "N", type = "integer", help = "open connections at most", default = 1024 },
      { name = "max-connections-per-peer", arg = "N", type = "integer", default = 128,
        help = "open connections from one client address at most (more are refused at once)" },
      { name = "quiet", type = "flag", help = "no access log" },
    }),
    run = function(o)
      if not o.db then args.usage_error("missing --db FILE") end
      local state = o.state or (o.db .. ".state")
      local host, port = o.listen:match("^([%d%.]+):(%d+)$")
      port = math.tointeger(tonumber(port))
      if not host or not port or port > 65535 then
        args.usage_error("--listen expects IPv4:PORT, got '%s'", o.listen)
      end
      local loopback = host:match("^127%.") ~= nil
      local key, kerr
      if o.key_file then
        key, kerr = read_key(o.key_file)
        if not key then return fail("serve", kerr) end
      elseif os.getenv("RETAPE_API_KEY") and os.getenv("RETAPE_API_KEY") ~= "" then
        key = os.getenv("RETAPE_API_KEY")
      end
      if key and o.no_auth then args.usage_error("give a key or --no-auth, not both") end
      if not key then
        if not o.no_auth then
          args.usage_error("no API key: give --key-file FILE or set RETAPE_API_KEY (or --no-auth on a loopback address)")
        end
        if not loopback then args.usage_error("--no-auth is allowed on a loopback address only, not %s", host) end
      end
      -- libmicrohttpd is loaded now (the host does not link it): a missing
      -- one is said before any file is made
      local loaded, lerr = require("retape.http").available()
      if not loaded then return fail("serve", lerr) end
      local f = io.open(o.db, "rb")
      if f then f:close()
      else -- a new receipts file for the webhooks (the original DDL)
        local w, werr = require("retape.ingest").writer(o.db)
        if not w then return fail("serve", werr) end
        w:close()
        io.stderr:write(string.format("retape serve: %s: a new receipts database\n", o.db))
      end
      -- without --rules, the store's recorded ruleset (by content) and, without --set/--config, its overrides
      local files, sets = false, o.set
      if not o.rules and require("retape.fs").kind(state .. "/CURRENT") then
        local st = require("retape.store").open(state, true)
        local recipe = st and st:recipe()
        if st then st:close() end
        if recipe and recipe.spec then
          o.rules, files = recipe.spec, recipe.files
          if not o.config and #o.set == 0 then
            sets = require("retape.rules").texts(require("retape.manifest").overrides_of(recipe),
              function(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end)
          end
        end
      end
      o.rules = o.rules or "default"
      -- the ruleset and overrides are checked here, before anything listens
      local ok, rerr = pcall(require("retape.serve.engine").rules, { rules = o.rules, config = o.config, sets = sets, files = files })
      if not ok then return fail("serve", tostring(rerr)) end
      local ledger = o.ledger or (state:gsub("/+$", "") .. ".ledger.db")
      local config = json.encode { db = o.db, state = state, rules = o.rules, config = o.config or false,
        sets = sets or {}, files = files, key = key or false, ledger = ledger, quiet = o.quiet or false }
      local http = require "retape.http"
      local sig, err = http.serve {
        host = host, port = port, threads = o.threads or (require("retape.pool").cores() + 1), state = state,
        max_body = o.max_body, max_header = o.max_header, timeout = o.timeout,
        max_connections = o.max_connections, max_per_peer = o.max_connections_per_peer,
        request_timeout = o.request_timeout,
        app = "retape.serve.app", config = config,
        on_ready = function(p)
          -- read commands that find the store held say where to read it instead
          local f = io.open(state .. "/SERVED_BY", "w")
          if f then f:write(string.format("http://%s:%d\n", host, p)); f:close() end
          io.stderr:write(string.format("retape serve: listening on http://%s:%d (state %s, rules %s%s)\n",
            host, p, state, o.rules, key and "" or ", no auth"))
        end,
      }
      os.remove(state .. "/SERVED_BY")
      if not sig then return fail("serve", err) end
      io.stderr:write(string.format("retape serve: %s: stopped cleanly\n", sig))
      return 0
    end,
  })
end
