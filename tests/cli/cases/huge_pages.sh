# The commands that walk receipts start again once with glibc's malloc asking
# for transparent huge pages (core/main.c), when the kernel gives them on
# request only, and never under valgrind or the sanitizer build.  What the
# script sees is compared with what this machine should give.
cat > $T/env.lua <<'LUA'
local f = io.open("/proc/self/cmdline", "rb"); local cmd = f:read("a"); f:close()
local tail = cmd:gsub("%z$", ""):match("%z(.*)$"):gsub("%z", " ")
print("tunables: " .. tostring(os.getenv("GLIBC_TUNABLES")))
print("argv: " .. tail)
print("stdin: " .. tostring(io.read("l")))
LUA
madvise=0
grep -q '\[madvise\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null && madvise=1
case "${RETAPE}" in *valgrind*) madvise=0 ;; esac
[ "${SANITIZE:-0}" = 1 ] && madvise=0
expect() { # what GLIBC_TUNABLES should read: restarted, or as given
  if [ $madvise = 1 ]; then echo "${1:+$1:}glibc.malloc.hugetlb=1"; else echo "${1:-nil}"; fi
}
check() { # check GIVEN: runs env.lua with GLIBC_TUNABLES=GIVEN (empty: unset)
  local got
  if [ -n "$1" ]; then got=$(echo line | GLIBC_TUNABLES=$1 $RETAPE --lua-dir lua run $T/env.lua); echo "exit: $?"
  else got=$(echo line | env -u GLIBC_TUNABLES $RETAPE --lua-dir=lua run $T/env.lua); echo "exit: $?"; fi
  echo "$got" | sed -n 2,3p
  [ "$(echo "$got" | sed -n 1p)" = "tunables: $(expect "$1")" ] && echo "tunables as expected" || echo "tunables: $(echo "$got" | sed -n 1p), expected $(expect "$1")"
}
check ""
check "glibc.malloc.check=0"
# the user's own setting of the tunable is kept as it is (no restart)
got=$(echo line | GLIBC_TUNABLES=glibc.malloc.hugetlb=0 $RETAPE run $T/env.lua); echo "exit: $?"
echo "$got" | head -1
