-- Importing receipts into an SQLite file with the original DDL.
--
-- Three input shapes:
--   * receipt lines (JSON lines, plain or .gz): {"receipt_id", "ticker", "ts",
--     "bucket_5m", "payload_hash", "script_version", "payload": {...}} as in
--     data/receipts-*.jsonl.gz, or with "payload_json" as a string;
--   * raw payload lines: one webhook body per line, as TradingView sent it;
--   * an SQL dump (a D1 export): its INSERT statements into ingest_receipts.
-- Missing receipt_id, bucket_5m, payload_hash and received_ts are computed as
-- the original worker did; duplicates are ignored (INSERT OR IGNORE); a bad
-- line is reported with its line number and the field, and skipped.  Every
-- format goes through the same checks (complete_row): text fields without
-- NUL or control characters, times within a plausible range (2000-2100),
-- a payload that is one strict JSON object (finite numbers, no key twice:
-- payload_object, for every shape).  Lines (and dump statements) longer than
-- the cap (max_line, 16 MiB by default) are skipped unread and reported; each
-- dump statement stands alone (one cut short is rejected, the next kept).
-- A .gz is checked whole before its lines are read: a damaged or truncated
-- member is reported first and nothing of it is imported (the members
-- before it are); bytes after the last member are reported.  Any input not
-- read to its end fails (total.errors); the totals are still returned.
-- "-" is standard input (a .gz there is copied, compressed, to a temporary
-- file to be checked first, like a file).
local ingest = require "retape.ingest"

-- The rows (retape.import.row): checked and completed one at a time; this
-- module reads the inputs (JSON lines, gzip, SQL dumps) into the database.
local M = {}
for name, value in pairs(require "retape.import.row") do M[name] = value end

local function new_counts() return { read = 0, inserted = 0, duplicate = 0, rejected = 0, skipped_statements = 0 } end

local function insert(writer, counts, row)
  if writer:insert(row) then counts.inserted = counts.inserted + 1 else counts.duplicate = counts.duplicate + 1 end
end

-- A gzip input whose check found a damaged member (or bytes after the
-- last one) is reported before any of its lines: its rows stop where the
-- damaged member starts.
local function reported_problem(reader, report)
  local problem = reader:problem()
  if problem then report(problem, "input") end
  return problem
end

-- read_input(open, path, opts, report, body) -> true | nil, message,
-- had_problem: opens an input with `open` (ingest.lines or
-- ingest.statements), reports a damaged gzip member first, then runs
-- body(step, reader, closer) over it in a protected call (a read error
-- ends the input with its first line as the message).
local function read_input(open, path, opts, report, body)
  local step, reader, _, closer = open(path, opts.max_line)
  if not step then return nil, reader end
  local problem = reported_problem(reader, report)
  local ok, err = pcall(body, step, reader, closer)
  if not ok then return nil, tostring(err):match("^[^\n]*"), problem ~= nil end
  return true
end

local function import_jsonl(writer, path, counts, report, opts)
  return read_input(ingest.lines, path, opts, report, function(step, reader, closer)
    for lineno, line, skipped in step, reader, nil, closer do
      counts.read = counts.read + 1
      local row, why
      if line then row, why = M.row_from_line(line) else why = skipped end
      if row then insert(writer, counts, row)
      else
        counts.rejected = counts.rejected + 1
        report(("%s:%d: %s"):format(path, lineno, why))
      end
    end
  end)
end

-- Statements of a dump skipped without a word: transaction control and
-- pragmas (every dump has them) and DDL for ingest_receipts itself.
local QUIET = { BEGIN = true, COMMIT = true, END = true, ROLLBACK = true, SAVEPOINT = true, RELEASE = true,
                PRAGMA = true }

-- The statement without leading white space and comments (-- and /* */).
local function strip_comments(sql)
  local i = 1
  while true do
    i = sql:find("%S", i) or #sql + 1
    if sql:sub(i, i + 1) == "--" then i = (sql:find("\n", i, true) or #sql) + 1
    elseif sql:sub(i, i + 1) == "/*" then i = (select(2, sql:find("*/", i + 2, true)) or #sql) + 1
    else return sql:sub(i) end
  end
end

-- The table a CREATE TABLE / CREATE INDEX statement is about (lower case).
local function ddl_target(body)
  local u = body:upper()
  local name = u:match('^CREATE%s+UNIQUE%s+INDEX%s.-%sON%s+["`%[]?([%w_.]+)')
    or u:match('^CREATE%s+INDEX%s.-%sON%s+["`%[]?([%w_.]+)')
    or u:match('^CREATE%s+TABLE%s+IF%s+NOT%s+EXISTS%s+["`%[]?([%w_.]+)')
    or u:match('^CREATE%s+TABLE%s+["`%[]?([%w_.]+)')
  return name and (name:lower():gsub("^main%.", ""))
end

local function import_sql(writer, path, counts, report, opts)
  return read_input(ingest.statements, path, opts, report, function(step, reader, closer)
    for first_line, sql, had_nul in step, reader, nil, closer do
      if not sql then -- rejected by the reader: each statement stands alone
        counts.rejected = counts.rejected + 1
        report(("%s:%d: statement rejected: %s"):format(path, first_line, had_nul))
        goto next
      end
      local body = strip_comments(sql)
      local verb = (body:match("^(%a+)") or ""):upper()
      local target = body:match('^[Ii][Nn][Ss][Ee][Rr][Tt]%s+[%a%s]-[Ii][Nn][Tt][Oo]%s+["`%[]?([%w_%.]+)')
      if target then target = target:lower():gsub("^main%.", "") end
      local ddl_table = ddl_target(body)
      local head = body:match("^[^\n]*"):sub(1, 60)
      if had_nul then
        counts.rejected = counts.rejected + 1
        report(("%s:%d: statement rejected: it contains a NUL byte"):format(path, first_line))
      elseif verb == "INSERT" and target == "ingest_receipts" then
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
      elseif QUIET[verb] or ddl_table == "ingest_receipts" then
        counts.skipped_statements = counts.skipped_statements + 1
      else
        counts.rejected = counts.rejected + 1
        report(("%s:%d: statement skipped: '%s' (only INSERT INTO ingest_receipts is imported)"):format(
          path, first_line, verb == "" and head or (verb == "INSERT" and head or verb)))
      end
      ::next::
    end
  end)
end

-- Guesses the format from the file name: *.sql[.gz] is a dump, anything else JSON lines.
function M.detect_format(path)
  if path == "-" then return "jsonl" end
  if path:match("%.sql$") or path:match("%.sql%.gz$") then return "sql" end
  return "jsonl"
end

-- Imports files into db_path.  opts: {format = "auto"|"jsonl"|"sql",
-- max_line = the line (and statement) cap in bytes (default 16 MiB),
-- report = function(message, kind) for each rejected line or statement
-- (kind nil) and each input that could not be read whole (kind "input",
-- reported before its lines when a gzip check finds it)}.  Returns the counts in total
-- and per file ({path, counts, error}); total.errors counts the inputs that
-- failed (the rows read before a failure stay imported).  nil, message only
-- when the database itself cannot be opened or committed.
function M.run(db_path, files, opts)
  opts = opts or {}
  local report = opts.report or function() end
  local writer, err = ingest.writer(db_path)
  if not writer then return nil, err end
  local total, per_file = new_counts(), {}
  total.errors = 0
  for _, path in ipairs(files) do
    local counts = new_counts()
    local format = (opts.format == nil or opts.format == "auto") and M.detect_format(path) or opts.format
    local pok, ok, why, reported
    if format == "sql" then pok, ok, why, reported = pcall(import_sql, writer, path, counts, report, opts)
    elseif format == "jsonl" then pok, ok, why, reported = pcall(import_jsonl, writer, path, counts, report, opts)
    else pok, why = true, "unknown format '" .. tostring(format) .. "' (jsonl, sql or auto)" end
    if not pok then why = tostring(ok):match("^[^\n]*") end
    local entry = { path = path, counts = counts }
    if not (pok and ok) then
      entry.error = why
      total.errors = total.errors + 1
      if not reported then report(why, "input") end
    end
    per_file[#per_file + 1] = entry
    for k, v in pairs(counts) do total[k] = total[k] + v end
  end
  local ok, cerr = writer:close()
  if not ok then return nil, cerr end
  return total, per_file
end

return M
