-- Importing receipts into an SQLite file with the original DDL.
--
-- Three input shapes:
--   * receipt lines (JSON lines, plain or .gz): {"receipt_id", "ticker", "ts",
--     "bucket_5m", "payload_hash", "script_version", "payload": {...}} as in
--     ../shared/data/receipts-*.jsonl.gz, or with "payload_json" as a string;
--   * raw payload lines: one webhook body per line, as TradingView sent it;
--   * an SQL dump (a D1 export): its INSERT statements into ingest_receipts.
-- Missing receipt_id, bucket_5m, payload_hash and received_ts are computed as
-- the original worker did; duplicates are ignored (INSERT OR IGNORE); a bad
-- line is reported with its line number and skipped.
local ingest = require "retape.ingest"
local rtime = require "retape.time"
local json = require "cjson.safe"

local M = {}
local null = json.null

local function present(v) return v ~= nil and v ~= null end

-- The original's ticker normalisation: upper case, "BRK.B" -> "BRK-B".
function M.normalize_ticker(t)
  return (t:upper():gsub("%.", "-"))
end

local function integer_of(v)
  if type(v) == "string" then v = tonumber(v) end
  return math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v)) or nil
end

-- Checks and completes one receipt.  `raw` is the payload text exactly as
-- stored (its hash is part of the id).  Returns the row or nil, message.
local function complete_row(fields, raw, payload)
  local ticker = present(fields.ticker) and fields.ticker or (payload and payload.ticker)
  if type(ticker) ~= "string" or ticker == "" then return nil, "field 'ticker' is missing or empty" end
  ticker = M.normalize_ticker(ticker)
  local ts_field = present(fields.ts) and fields.ts or (payload and payload.ts)
  local ts = integer_of(ts_field)
  if not ts then return nil, "field 'ts' is missing or not an integer (ms)" end
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
  local version
  if present(fields.script_version) then version = tostring(fields.script_version)
  elseif payload and present(payload.script_version) then version = tostring(payload.script_version) end
  return {
    receipt_id = present(fields.receipt_id) and tostring(fields.receipt_id) or (ticker .. ":" .. ts .. ":" .. hash),
    ticker = ticker, ts = ts, bucket_5m = bucket, received_ts = received,
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

-- Turns one JSON line into a row, or nil, message.
function M.row_from_line(line)
  local obj, err = json.decode(line)
  if obj == nil then return nil, "malformed JSON: " .. tostring(err) end
  if type(obj) ~= "table" then return nil, "not a JSON object" end
  if present(obj.payload) or present(obj.payload_json) then
    local raw, payload
    if type(obj.payload_json) == "string" then
      raw = obj.payload_json
      payload = json.decode(raw)
      if type(payload) ~= "table" then return nil, "field 'payload_json' is not a JSON object" end
    elseif type(obj.payload) == "table" then
      raw = ingest.json_span(line, "payload")
      payload = obj.payload
    elseif type(obj.payload) == "string" then
      raw = obj.payload
      payload = json.decode(raw)
      if type(payload) ~= "table" then return nil, "field 'payload' is not a JSON object" end
    else
      return nil, "field 'payload' is not an object"
    end
    return complete_row(obj, raw, payload)
  end
  local ok, why = check_raw_payload(obj)
  if not ok then return nil, why end
  return complete_row({}, line:match("^%s*(.-)%s*$"), obj)
end

-- Converts a row staged from an SQL dump (all columns as text) into a row.
function M.row_from_staged(s)
  if not s.payload_json then return nil, "payload_json is NULL" end
  local payload = json.decode(s.payload_json)
  if type(payload) ~= "table" then payload = nil end
  return complete_row(s, s.payload_json, payload)
end

local function new_counts() return { read = 0, inserted = 0, duplicate = 0, rejected = 0, skipped_statements = 0 } end

local function insert(writer, counts, row)
  if writer:insert(row) then counts.inserted = counts.inserted + 1 else counts.duplicate = counts.duplicate + 1 end
end

local function import_jsonl(writer, path, counts, report)
  local step, reader, _, closer = ingest.lines(path)
  if not step then return nil, reader end
  for lineno, line in step, reader, nil, closer do
    if line:find("%S") then
      counts.read = counts.read + 1
      local row, why = M.row_from_line(line)
      if row then insert(writer, counts, row)
      else
        counts.rejected = counts.rejected + 1
        report(("%s:%d: %s"):format(path, lineno, why))
      end
    end
  end
  return true
end

-- The statements a dump may carry besides the inserts we want.
local SKIPPED = { CREATE = true, BEGIN = true, COMMIT = true, END = true, PRAGMA = true,
                  DROP = true, ROLLBACK = true, SAVEPOINT = true, RELEASE = true, ANALYZE = true }

local function import_sql(writer, path, counts, report)
  local step, reader, _, closer = ingest.statements(path)
  if not step then return nil, reader end
  for first_line, sql in step, reader, nil, closer do
    local body = sql:gsub("^%s*%-%-[^\n]*\n", ""):gsub("^%s+", "")
    local verb = (body:match("^(%a+)") or ""):upper()
    local target = body:match('^[Ii][Nn][Ss][Ee][Rr][Tt]%s+[%a%s]-[Ii][Nn][Tt][Oo]%s+["`%[]?([%w_%.]+)')
    if target then target = target:gsub("^main%.", "") end
    if verb == "INSERT" and target == "ingest_receipts" then
      local staged, why = writer:stage(sql)
      if not staged then
        counts.rejected = counts.rejected + 1
        report(("%s:%d: statement rejected: %s"):format(path, first_line, why))
      else
        for _, s in ipairs(staged) do
          counts.read = counts.read + 1
          local row, bad = M.row_from_staged(s)
          if row then insert(writer, counts, row)
          else
            counts.rejected = counts.rejected + 1
            report(("%s:%d: receipt %s: %s"):format(path, first_line, tostring(s.receipt_id), bad))
          end
        end
      end
    elseif SKIPPED[verb] or verb == "INSERT" then
      counts.skipped_statements = counts.skipped_statements + 1
    else
      counts.rejected = counts.rejected + 1
      report(("%s:%d: unsupported statement '%s' (only INSERT INTO ingest_receipts is imported)"):format(path, first_line, verb))
    end
  end
  return true
end

-- Guesses the format from the file name: *.sql[.gz] is a dump, anything else JSON lines.
function M.detect_format(path)
  if path:match("%.sql$") or path:match("%.sql%.gz$") then return "sql" end
  return "jsonl"
end

-- Imports files into db_path.  opts: {format = "auto"|"jsonl"|"sql",
-- report = function(message) for each rejected line}.  Returns the counts
-- per file and in total, or nil, message on an environmental failure
-- (rows committed before it stay committed).
function M.run(db_path, files, opts)
  opts = opts or {}
  local report = opts.report or function() end
  local writer, err = ingest.writer(db_path)
  if not writer then return nil, err end
  local total, per_file = new_counts(), {}
  for _, path in ipairs(files) do
    local counts = new_counts()
    local format = (opts.format == nil or opts.format == "auto") and M.detect_format(path) or opts.format
    local ok, why
    if format == "sql" then ok, why = import_sql(writer, path, counts, report)
    elseif format == "jsonl" then ok, why = import_jsonl(writer, path, counts, report)
    else why = "unknown format '" .. tostring(format) .. "' (jsonl, sql or auto)" end
    if not ok then
      writer:close()
      return nil, why
    end
    per_file[#per_file + 1] = { path = path, counts = counts }
    for k, v in pairs(counts) do total[k] = total[k] + v end
  end
  local ok, cerr = writer:close()
  if not ok then return nil, cerr end
  return total, per_file
end

return M
