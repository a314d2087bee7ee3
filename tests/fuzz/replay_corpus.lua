-- replay_corpus.lua FILE... — replays the fuzz corpus (tests/fuzz/corpus/
-- {jsonl,sql,payload,gz,sqlcut}/*) through the harness, one TAP line per input: the
-- JSON-lines and SQL-dump readers (import) and the payload decoder.  Each
-- input must keep the harness's invariants (totals always returned and
-- consistent, no traceback, decoded payload or a named error).
local t = dofile("tests/lua/tap.lua")
local dir = t.tempdir()
local H = dofile("tests/fuzz/harness.lua")(dir)
for _, path in ipairs { ... } do
  local kind = path:match("/corpus/(%a+)/")
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  local ok, e = pcall(H[kind], bytes)
  t.ok(ok, kind .. " " .. path:match("[^/]+$"), e)
end
os.exit(t.done())
