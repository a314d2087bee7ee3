# A script may load a Lua C module through package.cpath (here the
# system's lua-cjson, which lua-cjson-dev installs).  The host links Lua
# from its static archive and exports Lua's C API, so the module binds to
# the host's own Lua: one interpreter, the module's functions work on its
# tables.  A host that did not export the API fails with "undefined
# symbol: lua_checkstack".
cat > $T/m.lua <<'LUA'
local path = assert(package.searchpath("cjson", package.cpath))
local open = assert(package.loadlib(path, "luaopen_cjson"))
local m = open()
print(m.encode({ 1, 2, "three" }), m.decode('{"a":[4,5]}').a[2])
LUA
run $RETAPE run $T/m.lua
