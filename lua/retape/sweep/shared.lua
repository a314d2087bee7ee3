-- retape.sweep.shared — the one read of the receipts that every variant of
-- a pass replays from: a source with what a replay calls on a retape.source
-- (buckets, cursor -> fetch / close, snapshot), each bucket read and decoded
-- once when every running variant has asked for it, each variant given its
-- own copy of what its ruleset writes into.  A variant that asks for a
-- bucket not loaded yet yields to the scheduler (retape.sweep.pass).
local json = require "retape.json"

local M = {}


-- A deep copy of a decoded payload (C: lua_json.c), one per variant.
local deep_copy = require("retape.jsonenc").copy
M.deep_copy = deep_copy

-- What a ruleset writes into its payload below the top level: the nested
-- tables each variant needs its own copy of (everything else it only reads,
-- so the variants share it).  A ruleset declares them as R.payload_writes
-- (a list of top-level keys; the shipped rulesets write only into `flags`).
-- Without a declaration every variant gets a deep copy of every payload.
function M.payload_writes(R)
  if type(R.payload_writes) == "table" then return R.payload_writes end
  return nil
end

-- A variant's copy of a payload: the top level copied, the tables named
-- in `writes` deep-copied, the other nested tables shared (read-only).
local function shared_copy(p, writes)
  local c = {}
  for k, v in next, p do c[k] = v end
  for i = 1, #writes do
    local k = writes[i]
    local v = c[k]
    if type(v) == "table" then c[k] = deep_copy(v) end
  end
  return setmetatable(c, getmetatable(p))
end
M.shared_copy = shared_copy
-- The same for a payload decoded selectively (retape.decode): the copy keeps
-- the fields not decoded yet pending, so they still decode on first read.
local partial_copy = require("retape.decode").copy

local Shared = {}
Shared.__index = Shared
local Cursor = {}
Cursor.__index = Cursor

-- shared(src) -> a source for the variants' replays.  src: an open
-- retape.source (borrowed; the caller closes it).
function M.shared(src)
  return setmetatable({ src = src, bucket = nil, rows = nil, lists = {}, reads = 0, loaded = {} }, Shared)
end

local function scope_key(scope)
  scope = scope or {}
  return json.encode { scope.from or false, scope.to or false, scope.script_version or false, scope.tickers or false }
end

-- The buckets of a scope (cached: every variant asks for the same ones).
function Shared:buckets(scope)
  local key = scope_key(scope)
  local list = self.lists[key]
  if not list then
    local err
    list, err = self.src:buckets(scope)
    if not list then return nil, err end
    self.lists[key] = list
  end
  return list
end

-- The shared pass holds one read snapshot for all variants (see run()),
-- begun before any variant runs.
function Shared:snapshot() return true end
function Shared:holding() return true end

-- A cursor over the cached rows of `bucket`; its first fetch waits (yields
-- to the scheduler) until the bucket is loaded.
function Shared:cursor(bucket, scope)
  return setmetatable({ shared = self, bucket = bucket, key = scope_key(scope), scope = scope, pos = 0 }, Cursor)
end

-- cur:fetch(n [, decode]) -> up to n rows: the shared row fields with the
-- variant's own copy of the decoded payload.
function Cursor:fetch(n, decode)
  local sh = self.shared
  while sh.bucket ~= self.bucket or sh.key ~= self.key do
    coroutine.yield(self)
  end
  local rows, out = sh.rows, {}
  local last = math.min(#rows, self.pos + n)
  local fields, writes = sh.fields, sh.writes
  for i = self.pos + 1, last do
    local r = rows[i]
    local c = {}
    for k, v in next, r do c[k] = v end
    if decode ~= false and type(r.payload) == "table" then
      if fields then c.payload = partial_copy(fields, r.payload, writes)
      else c.payload = writes and shared_copy(r.payload, writes) or deep_copy(r.payload) end
    elseif decode == false then c.payload = nil end
    out[#out + 1] = c
  end
  self.pos = last
  return out
end
function Cursor:close() self.pos = math.huge end
Cursor.__close = Cursor.close

-- Reads and decodes one bucket for every variant waiting on it.
function Shared:load(bucket, scope, key)
  local cur <close> = assert(self.src:cursor(bucket, scope))
  local rows = {}
  repeat
    local batch = cur:fetch(1024, self.fields or true)
    for i = 1, #batch do rows[#rows + 1] = batch[i] end
  until #batch == 0
  self.bucket, self.key, self.rows = bucket, key, rows
  self.reads = self.reads + #rows
  self.loaded[#self.loaded + 1] = bucket
  return #rows
end

return M
