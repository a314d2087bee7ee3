# libmicrohttpd (and the TLS stack it links) is loaded by `retape serve`
# alone (core/http.c), not by every start of the host: a script's process
# maps none of them.  When serve cannot load it, it says which library and
# why, and exits before touching the store.  (libsqlite3, always linked,
# shows that the maps check sees a library that is there.)
cat > $T/maps.lua <<'LUA'
local f = io.open("/proc/self/maps", "rb"); local maps = f:read("a"); f:close()
for _, lib in ipairs { "libmicrohttpd", "libgnutls", "libsqlite3" } do
  print(lib .. ": " .. (maps:find(lib, 1, true) and "mapped" or "not mapped"))
end
LUA
run $RETAPE run $T/maps.lua
# a broken library of libmicrohttpd's soname first on the search path
soname=$(objdump -p "$(pkg-config --variable=libdir libmicrohttpd)/libmicrohttpd.so" | awk '$1 == "SONAME" { print $2 }')
mkdir $T/lib
head -c 200 /dev/zero | tr '\0' 'x' > "$T/lib/$soname"
LD_LIBRARY_PATH=$T/lib run $RETAPE serve --db $T/new.db --state $T/s --listen 127.0.0.1:0 --no-auth 2>$T/err.txt
sed "s#$soname#SONAME#g" $T/err.txt
test -e $T/s && echo "a store was made" || echo "no store"
test -e $T/new.db && echo "a receipts file was made" || echo "no receipts file"
