# The commands that walk receipts start again once with glibc's malloc asking
# for transparent huge pages (core/main.c), when the kernel gives them on
# request only, and never under valgrind or a sanitizer build (SANITIZE=1,
# as the Makefile's test targets set it).  The second start puts
# GLIBC_TUNABLES back as it was.  What the script sees is compared with what
# this machine should give.
cat > $T/env.lua <<'LUA'
local function read(path) local f = io.open(path, "rb"); local s = f:read("a"); f:close(); return s end
local environ, cmd = read("/proc/self/environ"), read("/proc/self/cmdline")
-- the start's own environment: the first start's note is there only in a second start
print(environ:find("%zRETAPE_TUNABLES_BEFORE=") and "restarted" or "started once")
print("argv: " .. cmd:gsub("%z$", ""):match("%z(.*)$"):gsub("%z", " "))
print("stdin: " .. tostring(io.read("l")))
print("tunables: " .. tostring(os.getenv("GLIBC_TUNABLES")))
print("note left: " .. tostring(os.getenv("RETAPE_TUNABLES_BEFORE")))
print("name: " .. read("/proc/self/comm"):gsub("%s+$", ""))
LUA
madvise=0
grep -q '\[madvise\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null && madvise=1
vg=0
case "${RETAPE}" in *valgrind*) vg=1 madvise=0 ;; esac
[ "${SANITIZE:-0}" = 1 ] && madvise=0
check() { # check GIVEN: runs env.lua with GLIBC_TUNABLES=GIVEN ("-": unset)
  local got
  if [ "$1" = - ]; then got=$(echo line | env -u GLIBC_TUNABLES timeout 120 $RETAPE --lua-dir=lua run $T/env.lua); echo "exit: $?"
  else got=$(echo line | GLIBC_TUNABLES=$1 timeout 120 $RETAPE --lua-dir lua run $T/env.lua); echo "exit: $?"; fi
  local want="started once"
  [ $madvise = 1 ] && [[ "$1" != *glibc.malloc.hugetlb* ]] && want="restarted"
  [ "$(echo "$got" | sed -n 1p)" = "$want" ] && echo "start as expected" || echo "start: $(echo "$got" | sed -n 1p), expected $want"
  echo "$got" | sed -n 2,5p
  local name=$(echo "$got" | sed -n 6p)
  [ $vg = 1 ] || [ "$name" = "name: retape" ] && echo "name as expected" || echo "$name"
}
check -
check "glibc.malloc.check=0"
# the user's own setting of the tunable is kept as it is (no second start)
check "glibc.malloc.hugetlb=0"
