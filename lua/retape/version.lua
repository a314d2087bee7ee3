-- The version of the Lua layer; the core refuses to start with a layer whose
-- version or Lua API number differs from its own (see core/host.c).
return {
  version = "0.1.0",
  lua_api = 1,
}
