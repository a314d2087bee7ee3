#!/usr/bin/env bash
# Install test (TAP): `make install` into a temporary PREFIX (and once with
# DESTDIR), then, against the installed copy only: the binary, `retape run`
# finding the bundled scripts by name, the man page, the bash and zsh
# completions, the docs, and examples/embed.c built with
# `pkg-config --cflags --libs retape` running a replay through retape_replay().
set -u
cd "$(dirname "$0")/../.."
: "${DATA:?}"
T=$(mktemp -d "${RETAPE_TEST_TMP:-/tmp}/install.XXXXXX")
P=$T/prefix
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else failed=$((failed + 1)); echo "not ok $n - $2"; [ -n "${3:-}" ] && sed 's/^/#   /' <<<"$3" | tail -15; fi; }
out=$(make -s install PREFIX="$P" SANITIZE="${SANITIZE:-}" 2>&1); ok $? "make install PREFIX=$P" "$out"
missing=""
for f in bin/retape lib/libretape.a include/retape.h lib/pkgconfig/retape.pc share/retape/scripts/levels.lua \
         share/retape/scripts/replay-ingest.lua share/man/man1/retape.1 share/bash-completion/completions/retape \
         share/zsh/site-functions/_retape share/doc/retape/README.md share/doc/retape/SCRIPTING.md share/doc/retape/RULES.md; do
  [ -f "$P/$f" ] || missing="$missing $f"
done
ok "$([ -z "$missing" ]; echo $?)" "binary, library, header, retape.pc, scripts, man page, completions, docs installed" "missing:$missing"
out=$(make -s install PREFIX=/opt/retape DESTDIR="$T/stage" SANITIZE="${SANITIZE:-}" 2>&1 && cat "$T/stage/opt/retape/lib/pkgconfig/retape.pc")
ok "$([ -x "$T/stage/opt/retape/bin/retape" ] && grep -qx 'prefix=/opt/retape' <<<"$out"; echo $?)" "DESTDIR stages the files; retape.pc names the final PREFIX" "$out"

cd "$T"   # from here on, nothing of the source tree
R=$P/bin/retape
out=$("$R" --version 2>&1); ok $? "installed retape runs: $out" "$out"
out=$("$R" import --db r.db --quiet "$DATA/receipts-2025-12-10_2026-02-09.jsonl.gz" 2>&1 &&
      "$R" run levels.lua r.db lv.db 2026-02-02 2>&1)
ok $? "retape run levels.lua finds the installed script by name" "$out"
out=$("$R" run no-such-script.lua 2>&1); ok "$([ $? -ne 0 ] && grep -q 'no-such-script.lua' <<<"$out"; echo $?)" "an unknown script name still fails, naming it" "$out"
ok "$(grep -q '^\.TH RETAPE 1' "$P/share/man/man1/retape.1" && grep -q '^\.SS retape report' "$P/share/man/man1/retape.1"; echo $?)" "the man page has every command (e.g. report)"
if command -v man >/dev/null; then out=$(MANWIDTH=80 man -l "$P/share/man/man1/retape.1" 2>&1 | grep -c 'retape diff'); ok "$([ "$out" -gt 0 ]; echo $?)" "man -l renders it"; fi
out=$(bash -c ". '$P/share/bash-completion/completions/retape'; COMP_WORDS=(retape rep); COMP_CWORD=1; _retape; echo \${COMPREPLY[*]};
              COMP_WORDS=(retape report --v); COMP_CWORD=2; _retape; echo \${COMPREPLY[*]}" 2>&1)
ok "$([ "$out" = "$(printf 'replay report\n--vs')" ]; echo $?)" "bash completion: commands and options" "$out"
ok "$(head -1 "$P/share/zsh/site-functions/_retape" | grep -qx '#compdef retape' && grep -q "'--vs\[" "$P/share/zsh/site-functions/_retape"; echo $?)" "zsh completion: #compdef retape with the options"

SAN=""
[ "${SANITIZE:-}" = 1 ] && SAN="-fsanitize=address,undefined"
flags=$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs retape 2>&1)
ok "$([ $? = 0 ] && grep -q -- "-I$P/include" <<<"$flags"; echo $?)" "pkg-config --cflags --libs retape: $flags" "$flags"
cp "$OLDPWD/examples/embed.c" embed.c
out=$(cc -std=c11 -Wall -Wextra -Werror $SAN embed.c $flags -o embed 2>&1); ok $? "examples/embed.c builds against the installed copy" "$out"
out=$(./embed lv.db st 2026-02-02 2>&1); status=$?
ok "$([ $status = 0 ] && grep -Eq '^replay 2026-02-02: 1689 receipts, [1-9][0-9]* trades created, 0 errors$' <<<"$out"; echo $?)" \
  "embed runs a replay through retape_replay(): $(tail -1 <<<"$out")" "$out"
out=$("$R" trades --state st/replay 2>&1 | tail -n +2 | wc -l)
ok "$([ "$out" -gt 0 ] && grep -q "$out trades created" <<<"$(./embed lv.db st2 2026-02-02)"; echo $?)" "the store it wrote holds those trades ($out)"
# the whole header is C linkage for C++ (the fs block too): a C++ program links retape_fs_* and retape_kv_*
printf '%s\n' '#include <retape.h>' 'int main() { char *e = nullptr; char *d = retape_fs_tempdir(nullptr, "cxx", &e);' \
  '  int ok = d && retape_fs_kind(d) == 2 && retape_fs_remove_tree(d, &e) == 0; retape_free(d); retape_free(e);' \
  '  retape_kv_batch *b = retape_kv_batch_new(&e); ok = ok && b; retape_kv_batch_free(b); return ok ? 0 : 1; }' > cxx.cpp
out=$(g++ -std=c++17 -Wall -Werror $SAN cxx.cpp $flags -o cxx 2>&1 && ./cxx 2>&1); ok $? "retape.h from C++: every declaration has C linkage (fs, kv)" "$out"
out=$(./embed lv.db st 2026-02-30 2>&1); status=$?
ok "$([ $status = 1 ] && grep -q "embed: date: '2026-02-30'" <<<"$out"; echo $?)" "a bad date comes back through errptr: $(tail -1 <<<"$out")" "$out"
cd "$OLDPWD"
out=$(make -s uninstall PREFIX="$P" 2>&1); left=$(find "$P" -type f | wc -l)
ok "$([ "$left" = 0 ]; echo $?)" "make uninstall removes every installed file" "$(find "$P" -type f)"
echo "1..$n"
[ "$failed" = 0 ]
