-- retape.sandbox.guard — running rule code: guard() under the limits
-- enforced in C, and the watch on state a ruleset keeps outside its
-- declared per-ticker state.  Installed into retape.sandbox (guard,
-- watch_ruleset, rebase, warn).
local core = require "retape.sandboxcore"
local views = require "retape.sandbox.views"
local data = require "retape.sandbox.data"
local STATE_ADVICE, step_name = views.STATE_ADVICE, views.step_name
local state_view, is_weak = views.state_view, views.is_weak

return function(M)
  -- state kept outside the declared per-ticker state: refused
  --
  -- What a call of the ruleset could leave for a later call to see would
  -- differ with --threads (each thread has its own copy of the ruleset) and
  -- be lost by --resume.  From its first guarded call on, a rule file's own
  -- functions see the tables their upvalues hold -- the ruleset R and its
  -- config included, nested at any depth -- through read-only views: a write
  -- raises at the rule's line, naming the table and key.  Their upvalues
  -- themselves (a counter, a flag, a function that replaces itself) are
  -- compared after every call: a call that changed one fails, naming it.
  -- Weak tables are caches (memos) and stay writable; what changed before
  -- the first call (overrides, --set, a setter) is the ruleset as run.

  -- watch[fn] = the watcher of the ruleset fn belongs to (weak keys)
  local watch = setmetatable({}, { __mode = "k" })
  local watchers = setmetatable({}, { __mode = "k" }) -- R -> its watcher
  M.warn = function(message) io.stderr:write("retape: warning: ", message, "\n") end

  -- Where a function was defined, "file:line".
  local function defined_at(f)
    local info = debug.getinfo(f, "S")
    return info.short_src .. ":" .. info.linedefined
  end

  -- The upvalues of the watched functions by path, to name a change.
  local function upvalue_values(w)
    local out = {}
    for _, f in ipairs(w.fns) do
      for i = 1, math.huge do
        local name, x = debug.getupvalue(f, i)
        if not name then break end
        out[string.format("upvalue '%s' of the function at %s", name, defined_at(f))] = x
      end
    end
    return out
  end

  local function same(a, b) return rawequal(a, b) or (a ~= a and b ~= b) end

  -- What differs between two maps of path -> value, the first path in order.
  local function first_change(before, now)
    local paths = {}
    for p in pairs(before) do paths[#paths + 1] = p end
    for p in pairs(now) do if before[p] == nil then paths[#paths + 1] = p end end
    table.sort(paths)
    for _, p in ipairs(paths) do
      if not same(before[p], now[p]) then return p end
    end
    return "a value reachable from the ruleset"
  end

  -- watch_ruleset(R, is_user): watches the rule file functions reachable from
  -- R (is_user(fn) says which are; through R's tables and their upvalues):
  -- from the first guarded call of R.step, simulate, badge, explain_step,
  -- trade_is_open or trace_record on, their tables are read-only views and
  -- their upvalues are checked after every call.
  function M.watch_ruleset(R, is_user)
    local fns, seen, weaks = {}, {}, {}
    local function walk(v)
      local tv = type(v)
      if (tv ~= "table" and tv ~= "function") or seen[v] then return end
      seen[v] = true
      if tv == "table" then
        if is_weak(v) then weaks[#weaks + 1] = v; views.register_memo(v); return end
        local mt = debug.getmetatable(v)
        if mt then walk(mt) end
        for k, x in next, v do walk(k); walk(x) end
      elseif is_user(v) then
        fns[#fns + 1] = v
        for i = 1, math.huge do
          local name, x = debug.getupvalue(v, i)
          if not name then break end
          walk(x)
        end
      end
    end
    walk(R)
    if #fns == 0 then return end
    local w = { R = R, fns = fns, simulate = R.simulate, weaks = weaks }
    -- every function of R the engine calls: the first guarded call of any
    -- makes the ruleset read-only (R.badge may run before any step)
    for _, k in ipairs { "step", "simulate", "badge", "explain_step", "trade_is_open", "trace_record" } do
      if type(rawget(R, k)) == "function" then watch[rawget(R, k)] = w end
    end
    watchers[R] = w
  end

  -- rebase(R): the next guarded call takes the upvalues as they are then as
  -- the ruleset as run.
  function M.rebase(R)
    local w = watchers[R]
    if w then w.print, w.before = nil, nil end
  end

  -- The baseline: the tables the upvalues hold become read-only views (an
  -- upvalue is shared by the closures that capture it: each is set once).
  local function baseline(w)
    -- a memo starts empty: a weak table stays writable and what it holds is
    -- handed to rule code as it is, so one filled before the first call
    -- could hold the ruleset's own tables (or a function over them)
    -- unprotected; and its metatable holds __mode only (an __index there
    -- would hand them out too).  Checked once: a later run (rebase) finds
    -- the memos filled by the rules, through views only.
    if not w.memos_checked then
      for _, t in ipairs(w.weaks) do
        local k = next(t)
        if not data.weak_only(debug.getmetatable(t)) then
          error("rule state kept outside the ruleset's declared per-ticker state: a weak table (a memo) reachable "
            .. "from the ruleset has a metatable with more than __mode; a memo's is {__mode = \"k\"} (" .. STATE_ADVICE
            .. ")", 0)
        end
        if k ~= nil then
          error(string.format("rule state kept outside the ruleset's declared per-ticker state: a weak table (a memo) "
            .. "reachable from the ruleset holds entries (key %s) when the run starts; a memo must start empty (%s)",
            type(k) == "string" and string.format("%q", #k > 40 and k:sub(1, 40) .. "..." or k) or "a " .. type(k),
            STATE_ADVICE), 0)
        end
      end
      w.memos_checked = true
    end
    for _, f in ipairs(w.fns) do
      for i = 1, math.huge do
        local name, x = debug.getupvalue(f, i)
        if not name then break end
        if type(x) == "table" and name ~= "_ENV" then
          local path = rawequal(x, w.R) and "R" or string.format("upvalue '%s' (function at %s)", name, defined_at(f))
          local view = state_view(x, path)
          if view ~= x then debug.setupvalue(f, i, view) end
        end
      end
    end
    w.print, w.before = core.state_print(w.fns), upvalue_values(w)
  end

  local function refuse_change(w)
    local what = first_change(w.before, upvalue_values(w))
    w.print, w.before = nil, nil
    error(string.format("rule state kept outside the ruleset's declared per-ticker state: %s changed during this "
      .. "call (%s)", what, STATE_ADVICE), 0)
  end

  local function checked(w, ...)
    if core.state_print(w.fns) ~= w.print then refuse_change(w) end
    return ...
  end

  -- The book handed to simulate is the engine's, one per thread: a rule may
  -- change book.cash (reset for each receipt), nothing else of it.
  local BOOK_FREE = { cash = true, created = true, ticker = true }
  local function book_entries(book)
    local out, n = {}, 0
    for k, v in next, book do
      if not BOOK_FREE[k] then out[k], n = v, n + 1 end
    end
    return out, n
  end

  local function checked_book(w, book, ...)
    local n = 0
    for k, v in next, book do
      if not BOOK_FREE[k] then
        n = n + 1
        if not rawequal(w.book_entries[k], v) then
          w.book = nil
          error(string.format("rule state kept outside the ruleset's declared per-ticker state: book%s changed "
            .. "during this call (the book is the engine's; a rule may change book.cash only: %s)", step_name(k),
            STATE_ADVICE), 0)
        end
      end
    end
    if n ~= w.book_n then
      w.book = nil
      error("rule state kept outside the ruleset's declared per-ticker state: an entry of the book was removed "
        .. "during this call (" .. STATE_ADVICE .. ")", 0)
    end
    return checked(w, ...)
  end


  -- guard(limits, fn, ...) -> fn's results.  Runs fn under the instruction
  -- budget and memory cap (limits.instructions, limits.memory_mb; both must
  -- be positive); raises a limit error naming the limit when one is
  -- exceeded.  Nests: an inner guard restores the outer limits and hook.
  function M.guard(limits, fn, ...)
    local w = watch[fn]
    if w then
      if not w.print then baseline(w) end
      local book = fn == w.simulate and select(3, ...)
      if type(book) == "table" then
        if w.book ~= book then w.book, w.book_entries, w.book_n = book, book_entries(book) end
        return checked_book(w, book, core.guard(limits, fn, ...))
      end
      return checked(w, core.guard(limits, fn, ...))
    end
    return core.guard(limits, fn, ...)
  end
end
