-- gen_install.lua — generates, from the command line's own help texts, the
-- files `make install` ships: the man page and the shell completions.
--
--   retape run tools/gen_install.lua man  > retape.1
--   retape run tools/gen_install.lua bash > retape.bash
--   retape run tools/gen_install.lua zsh  > _retape
local cli = require "retape.cli"
local core = require "retape.core"
local kind = ...
local order, commands = cli.commands()

local function roff(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("\n%.", "\n\\&."):gsub("^%.", "\\&."):gsub("\n'", "\n\\&'"))
end

local function flags(c)
  local out = {}
  for _, o in ipairs(c.options or {}) do
    out[#out + 1] = "--" .. o.name
    if o.short then out[#out + 1] = "-" .. o.short end
  end
  return out
end

if kind == "man" then
  local w = function(s) io.write(s, "\n") end
  w('.TH RETAPE 1 "" "retape ' .. core.version .. '" "User Commands"')
  w(".SH NAME")
  w("retape \\- replay TradingView receipts through Lua rules, bucket by bucket")
  w(".SH SYNOPSIS")
  w(".B retape")
  w("[\\fB\\-\\-lua\\-dir\\fR \\fIDIR\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]")
  w(".SH DESCRIPTION")
  w("retape re-runs a trading day of webhook receipts exactly as if it were live: it walks the receipts")
  w("bucket by bucket, classifies every ticker into the 8 Kanban lanes, simulates the trades the lanes")
  w("imply and rebuilds the views.  The rules are Lua, loaded at run time.")
  w(".SH COMMANDS")
  for _, name in ipairs(order) do
    local c = commands[name]
    w(".SS " .. roff(c.usage))
    w(roff(c.summary) .. ".")
    if c.details then w(".PP"); w(roff(c.details)) end
    for _, o in ipairs(c.options or {}) do
      w(".TP")
      local head = "\\fB" .. (o.short and ("\\-" .. o.short .. ", ") or "") .. "\\-\\-" .. roff(o.name) .. "\\fR"
      if o.type ~= "flag" then head = head .. " \\fI" .. roff(o.arg or "VALUE") .. "\\fR" end
      w(head)
      local help = o.help or ""
      if o.default ~= nil and o.type ~= "flag" then help = help .. " (default " .. tostring(o.default) .. ")" end
      if o.repeat_ then help = help .. " (repeatable)" end
      w(roff(help))
    end
  end
  w(".SH GLOBAL OPTIONS")
  w(".TP\n\\fB\\-\\-lua\\-dir\\fR \\fIDIR\\fR\nload the Lua layer from DIR instead of the embedded one (also RETAPE_LUA_DIR)")
  w(".TP\n\\fB\\-\\-version\\fR\nprint the version")
  w(".SH ENVIRONMENT")
  w(".TP\n.B RETAPE_LUA_DIR\nthe Lua layer to load instead of the embedded one")
  w(".TP\n.B RETAPE_SCRIPT_PATH\ncolon-separated directories \\fBretape run\\fR searches for a script given by name")
  w(".TP\n.B GLIBC_TUNABLES\nthe commands that walk receipts (\\fBreplay\\fR, \\fBrun\\fR, \\fBsweep\\fR, \\fBserve\\fR, \\fBtest\\fR) start once more with glibc.malloc.hugetlb=1 added, so that memory comes in transparent huge pages, when the kernel gives them on request only (the variable is then put back as it was, for what they start); naming glibc.malloc.hugetlb in it (=0 or =1) keeps that start from happening")
  w(".SH EXIT STATUS")
  w("0 on success, 1 on a failure (and for \\fBdiff\\fR when the two stores differ), 2 on a usage error.")
  w(".SH FILES")
  w(".TP\n.I PREFIX/share/retape/scripts\nthe bundled scripts (levels.lua, replay-ingest.lua), found by name by \\fBretape run\\fR")
  w(".TP\n.I PREFIX/share/doc/retape\nREADME.md, SCRIPTING.md, RULES.md")
elseif kind == "bash" then
  io.write("# bash completion for retape (generated from its help texts)\n_retape() {\n")
  io.write("  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]}\n")
  io.write("  if [ \"$COMP_CWORD\" -eq 1 ]; then COMPREPLY=($(compgen -W '" .. table.concat(order, " ") .. " --help --version' -- \"$cur\")); return; fi\n")
  io.write("  case $cmd in\n")
  for _, name in ipairs(order) do
    local f = flags(commands[name])
    if #f > 0 then io.write("    ", name, ") opts='", table.concat(f, " "), "' ;;\n") end
  end
  io.write("    *) opts='' ;;\n  esac\n")
  io.write("  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi\n}\n")
  io.write("complete -o filenames -F _retape retape\n")
elseif kind == "zsh" then
  io.write("#compdef retape\n# zsh completion for retape (generated from its help texts)\n_retape() {\n")
  io.write("  local -a cmds\n  cmds=(\n")
  for _, name in ipairs(order) do io.write("    '", name, ":", (commands[name].summary:gsub("'", "'\\''"):gsub(":", "\\:")), "'\n") end
  io.write("  )\n  if (( CURRENT == 2 )); then _describe 'command' cmds; return; fi\n  case $words[2] in\n")
  for _, name in ipairs(order) do
    local c = commands[name]
    if #(c.options or {}) > 0 then
      io.write("    ", name, ") _arguments")
      for _, o in ipairs(c.options) do
        local help = (o.help or ""):gsub("'", "'\\''"):gsub("[%[%]]", "")
        io.write(" '--", o.name, "[", help, "]", o.type ~= "flag" and (":" .. (o.arg or "value"):gsub(":", "") .. ":_files") or "", "'")
      end
      io.write(" '*:file:_files' ;;\n")
    end
  end
  io.write("    *) _files ;;\n  esac\n}\n_retape \"$@\"\n")
else
  io.stderr:write("usage: retape run tools/gen_install.lua man|bash|zsh\n")
  return 2
end
return 0
