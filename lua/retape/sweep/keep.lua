-- retape.sweep.keep — a directory of kept stores (`sweep --keep DIR`):
-- claimed for one sweep, marked incomplete until it ends, so that a killed
-- sweep is finished by running it again.
local json = require "retape.json"
local fs = require "retape.fs"

local M = {}


-- The file that says a directory of kept stores is incomplete, and of which sweep.
M.INCOMPLETE = "SWEEP-INCOMPLETE"

-- claim_dir(dir, description) -> "new" | "again" | nil, message.  Takes a
-- directory for the stores of the sweep `description` (a table of what
-- decides its results): a new or empty one, or one where the same sweep
-- was killed (its INCOMPLETE file holds the same description), whose
-- partial stores are removed to be written again.  The INCOMPLETE file
-- stays until release_dir: a kept store is only ever read as complete.
function M.claim_dir(dir, description)
  local text = json.encode(description) .. "\n"
  local kind = fs.kind(dir)
  if kind and kind ~= "dir" then return nil, dir .. " exists and is not a directory" end
  local how = "new"
  local names = kind and fs.list(dir) or {}
  if #names > 0 then
    local fh = io.open(dir .. "/" .. M.INCOMPLETE)
    local held = fh and fh:read("a")
    if fh then fh:close() end
    if not held then return nil, dir .. " is not empty (--keep needs a new or empty directory)" end
    if held ~= text then
      return nil, string.format("%s holds the stores of another sweep, interrupted (%s); give another directory, "
        .. "or run that sweep again to finish it", dir, (held:gsub("\n$", "")))
    end
    for _, name in ipairs(names) do
      if name ~= M.INCOMPLETE then
        local ok, err = fs.remove_tree(dir .. "/" .. name)
        if not ok then return nil, err end
      end
    end
    how = "again"
  end
  local ok, err = fs.mkdirs(dir)
  if not ok then return nil, err end
  local fh, ferr = io.open(dir .. "/" .. M.INCOMPLETE, "w")
  if not fh then return nil, ferr end
  fh:write(text)
  fh:close()
  return how
end

-- The sweep's stores in dir are complete.
function M.release_dir(dir) os.remove(dir .. "/" .. M.INCOMPLETE) end

return M
