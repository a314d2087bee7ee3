-- retape.import.row — one receipt checked and completed, whatever shape it
-- came in (a receipt line, a webhook body, a row staged from an SQL dump):
-- text fields without NUL or control characters, times within 2000-2100,
-- a payload that is one strict JSON object; the missing receipt_id,
-- bucket_5m, payload_hash and received_ts computed as the original worker
-- did.  Lent by retape.import.
local ingest = require "retape.ingest"
local rtime = require "retape.time"
-- A strict decoder of its own: no NaN/Infinity/hex numbers (JSON has none),
-- without touching the settings of the shared cjson module.
local json = require("cjson.safe").new()
json.decode_invalid_numbers(false)

local M = {}
local null = json.null

local function present(v) return v ~= nil and v ~= null end

-- The original's ticker normalisation: upper case, "BRK.B" -> "BRK-B".
function M.normalize_ticker(t)
  return (t:upper():gsub("%.", "-"))
end

-- Plausible receipt times: 2000-01-01 .. 2100-01-01 UTC (ms), from the core.
M.TS_MIN, M.TS_MAX = rtime.TS_MIN, rtime.TS_MAX

-- nil if the text field is clean, else why not (NUL or control characters
-- would truncate or merge keys in SQLite and the store).
local function bad_text(name, v)
  local ok, bad_at = utf8.len(v)
  if not ok then return ("field '%s' is not valid UTF-8 (at byte %d)"):format(name, bad_at) end
  local at = v:find("%z")
  if at then return ("field '%s' contains a NUL byte (at byte %d)"):format(name, at) end
  at = v:find("%c")
  if at then return ("field '%s' contains a control character (at byte %d)"):format(name, at) end
  return nil
end

local function check_time(name, v)
  if v < M.TS_MIN or v >= M.TS_MAX then
    return ("field '%s' (%d) is outside the plausible range 2000-01-01..2100-01-01"):format(name, v)
  end
  return nil
end

local function integer_of(v)
  if type(v) == "string" then v = tonumber(v) end
  return math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v)) or nil
end

-- The one JSON-object rule, for every input shape: the payload text must be
-- strict JSON (finite numbers, no key twice in an object) and an object.
-- Returns the decoded payload, or nil, message.
local function payload_object(raw, field)
  local utf8_ok, bad_at = utf8.len(raw)
  if not utf8_ok then return nil, ("field '%s' is not valid UTF-8 (at byte %d)"):format(field, bad_at) end
  if not raw:find("^[ \t\r\n]*{") then return nil, ("field '%s' is not a JSON object"):format(field) end
  local bad, why = ingest.json_invalid_at(raw)
  if bad then return nil, ("field '%s' is not strict JSON: %s (at byte %d)"):format(field, why, bad) end
  local payload = json.decode(raw)
  if type(payload) ~= "table" then return nil, ("field '%s' is not a JSON object"):format(field) end
  return payload
end

-- Checks and completes one receipt.  `raw` is the payload text exactly as
-- stored (its hash is part of the id), checked and decoded here once; or,
-- given `payload`, already checked as JSON and decoded by the caller (then
-- only its UTF-8 is checked here).  Returns the row or nil, message.
local function complete_row(fields, raw, field, payload)
  local perr
  if payload then
    local utf8_ok, bad_at = utf8.len(raw)
    if not utf8_ok then return nil, ("field '%s' is not valid UTF-8 (at byte %d)"):format(field, bad_at) end
  else
    payload, perr = payload_object(raw, field or "payload_json")
    if not payload then return nil, perr end
  end
  local ticker = present(fields.ticker) and fields.ticker or payload.ticker
  if type(ticker) ~= "string" or ticker == "" then return nil, "field 'ticker' is missing or empty" end
  local why = bad_text("ticker", ticker)
  if why then return nil, why end
  ticker = M.normalize_ticker(ticker)
  local ts_field = present(fields.ts) and fields.ts or payload.ts
  local ts = integer_of(ts_field)
  if not ts then return nil, "field 'ts' is missing or not an integer (ms)" end
  why = check_time("ts", ts)
  if why then return nil, why end
  local bucket = rtime.bucket_5m(ts)
  if present(fields.bucket_5m) then
    local b = integer_of(fields.bucket_5m)
    if b ~= bucket then
      return nil, ("field 'bucket_5m' (%s) does not match ts %d (expected %d)"):format(
        b and ("%d"):format(b) or tostring(fields.bucket_5m), ts, bucket)
    end
  end
  local hash = present(fields.payload_hash) and tostring(fields.payload_hash) or ingest.fnv1a32(raw)
  local received = present(fields.received_ts) and integer_of(fields.received_ts) or ts
  if not received then return nil, "field 'received_ts' is not an integer" end
  why = check_time("received_ts", received)
  if why then return nil, why end
  local version
  if present(fields.script_version) then version = tostring(fields.script_version)
  elseif present(payload.script_version) then version = tostring(payload.script_version) end
  local id = present(fields.receipt_id) and tostring(fields.receipt_id) or (ticker .. ":" .. ts .. ":" .. hash)
  why = bad_text("receipt_id", id) or bad_text("payload_hash", hash) or (version and bad_text("script_version", version))
  if why then return nil, why end
  return {
    receipt_id = id, ticker = ticker, ts = ts, bucket_5m = bucket, received_ts = received,
    payload_hash = hash, script_version = version, payload_json = raw,
  }
end

-- The live ingest's validation of a raw webhook body (spec §1.2).
local function check_raw_payload(p)
  for _, f in ipairs { "ts", "htf_score", "ltf_score" } do
    if type(p[f]) ~= "number" and not tonumber(p[f]) then
      return nil, ("field '%s' is missing or not numeric"):format(f)
    end
  end
  return true
end

-- Turns one JSON line into a row, or nil, message.  The line is checked
-- whole first (strict JSON, finite numbers, no key twice: a repeated
-- "payload" would be stored from one and validated from the other).
function M.row_from_line(line)
  local nul = line:find("%z")
  if nul then return nil, ("the line contains a NUL byte (at byte %d)"):format(nul) end
  local obj, err = json.decode(line)
  if obj == nil then return nil, "malformed JSON: " .. tostring(err) end
  local bad, how = ingest.json_invalid_at(line) -- what cjson lets through ("1.", 1e400, a repeated key...)
  if bad then return nil, ("malformed JSON: %s at byte %d"):format(how, bad) end
  if not line:find("^[ \t\r\n]*{") then return nil, "not a JSON object" end
  if present(obj.payload) or present(obj.payload_json) then
    if type(obj.payload_json) == "string" then return complete_row(obj, obj.payload_json, "payload_json") end
    if type(obj.payload) == "string" then return complete_row(obj, obj.payload, "payload") end
    if type(obj.payload) == "table" then return complete_row(obj, (ingest.json_span(line, "payload")), "payload") end
    return nil, "field 'payload' is not a JSON object"
  end
  local raw = line:match("^%s*(.-)%s*$")
  local ok, why = check_raw_payload(obj)
  if not ok then return nil, why end
  return complete_row({}, raw, "payload_json")
end

-- The live write path (spec §1.2): a webhook body exactly as received ->
-- the row to store, or nil, message naming the field (or the byte where
-- the JSON breaks).  kind "ingest": TradingView's alerts (ticker, and ts,
-- htf_score, ltf_score numeric); "capture": the heartbeat / candle script
-- (ticker and ts), stored under its own script_version (the body's, else
-- "capture") and never classified, so it may not claim `classified`, the
-- version the replays keep.  The body is stored byte for byte (its hash is
-- part of the id); received_ts is the server's clock, which no rule reads.
-- The body is checked whole as strict JSON, then only the fields these
-- checks read are decoded (retape.decode: a 5 KB alert is not built into a
-- table of 140 keys on every webhook).
local WEBHOOK_FIELDS
function M.row_from_webhook(body, kind, received_ts, classified)
  local nul = body:find("\0", 1, true)
  if nul then return nil, ("the body contains a NUL byte (at byte %d)"):format(nul) end
  local bad = ingest.json_invalid_at(body)
  if bad then return nil, ("the body is not JSON (at byte %d)"):format(bad) end
  if not body:find("^[ \t\r\n]*{") then return nil, "the body is not a JSON object" end
  local decode = require "retape.decode"
  WEBHOOK_FIELDS = WEBHOOK_FIELDS or decode.compile { "ticker", "ts", "htf_score", "ltf_score", "script_version" }
  local obj = decode.decode(WEBHOOK_FIELDS, body)
  if type(obj) ~= "table" then return nil, "the body is not a JSON object" end
  if type(obj.ticker) ~= "string" or obj.ticker == "" then return nil, "field 'ticker' is missing or empty" end
  local fields = { received_ts = received_ts }
  if kind == "capture" then
    if type(obj.ts) ~= "number" and not tonumber(obj.ts) then return nil, "field 'ts' is missing or not numeric" end
    local v = present(obj.script_version) and tostring(obj.script_version) or "capture"
    if classified and v == classified then
      return nil, ("field 'script_version': '%s' is the classified version; send it to /timed/ingest"):format(v)
    end
    fields.script_version = v
  else
    local ok, why = check_raw_payload(obj)
    if not ok then return nil, why end
  end
  return complete_row(fields, body, "body", obj)
end

-- Converts a row staged from an SQL dump (all columns as text) into a row.
function M.row_from_staged(s)
  if not s.payload_json then return nil, "field 'payload_json' is NULL" end
  if s.payload_json:find("%z") then return nil, "field 'payload_json' contains a NUL byte" end
  return complete_row(s, s.payload_json, "payload_json")
end

return M
