# retape — build, test, bench, install.
#
#   make            build the `retape` host and libretape.a
#   make demo       install deps if needed, import the bundled receipts, replay a real day
#   make test       build and run every test suite (ends with "N passed, N failed")
#   make SANITIZE=1 test    the same under AddressSanitizer + UBSan (separate build dir)
#   make test-core  every suite but the two in headless Chromium
#   make test-unit  the C unit tests and the Lua tests of the engine API only
#   make bench      synthetic-corpus throughput and memory figures
#   make deps       install the Debian packages the build needs (root or sudo)
#   make fuzz       libFuzzer targets (clang, ASan) for the JSON-lines reader, the
#                   SQL-dump reader, the payload decoder and its simdjson front
#                   end against the hand-written scanner, the .gz reader's member
#                   rules (gz) and the dump's standalone statements (sqlcut),
#                   FUZZ_SECONDS each
#   make install PREFIX=/usr/local DESTDIR=
#
# Knobs: CC, CFLAGS_EXTRA, LDFLAGS_EXTRA, SANITIZE=1, V=1 (show commands),
# DATA (the bundled data: data/), PKG_CONFIG, CXX (g++, the two C++ files);
# for make fuzz: FUZZ_CC (clang), FUZZ_CXX (clang++), FUZZ_SECONDS (60 per target).

CC         ?= cc
CXX        ?= g++
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
DESTDIR    ?=
DATA       ?= $(abspath data)

# Libraries, as pkg-config names, and the Debian packages that provide them.
PKGS := lua5.4 lua5.4-cjson sqlite3 rocksdb zlib
DEBS := liblua5.4-dev lua-cjson-dev libsqlite3-dev librocksdb-dev zlib1g-dev pkg-config gcc make
# the payload decoder's fast path: simdjson (its DOM parse), behind a C++
# file core/json_simd.cpp (C-callable); g++ compiles it
PKGS += simdjson
DEBS += libsimdjson-dev g++
# `retape serve`: libmicrohttpd (HTTP/1.1, thread pool, limits, timeouts; see README)
# (loaded by `retape serve` alone, not linked: its TLS stack costs every
# other start ~8 ms; core/http.c opens it by the soname found at build time)
PKGS += libmicrohttpd
DEBS += libmicrohttpd-dev binutils
# what the host links (the rest is loaded at run time)
LINKED_PKGS = $(filter-out libmicrohttpd,$(PKGS))
# the results' fingerprint in run manifests (a whole-store scan): xxHash's XXH3
PKGS += libxxhash
DEBS += libxxhash-dev
# a clang build (CC=clang CXX=clang++: .ci/run's second compiler) needs clang
ifneq ($(findstring clang,$(CC) $(CXX)),)
DEBS += clang
endif
# What `make test` needs besides the build: the report's browser test (chromium),
# Node that drives `retape serve` like the app's client, curl; `make test-core`
# (every suite but the two in the browser) needs only the last two.
TEST_CORE_DEBS := nodejs curl
TEST_DEBS := chromium fonts-noto-color-emoji $(TEST_CORE_DEBS)

ifeq ($(SANITIZE),1)
BUILD    := build/asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT      := -O1 -g
else
BUILD    := build/release
SAN_FLAGS :=
OPT      := -O2 -g
endif

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wundef -Wcast-align -Wwrite-strings \
            -Wold-style-definition -Wnull-dereference -Wvla
C_WARNINGS := -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
CXX_WARNINGS := $(filter-out $(C_WARNINGS),$(WARNINGS)) -Wmissing-declarations
CFLAGS   := -std=c11 $(OPT) $(WARNINGS) $(SAN_FLAGS) -MMD -MP -Icore -I$(BUILD) $(CFLAGS_EXTRA)
CXXFLAGS := -std=c++17 $(OPT) $(CXX_WARNINGS) $(SAN_FLAGS) -MMD -MP -Icore $(CXXFLAGS_EXTRA)
LDFLAGS  := $(SAN_FLAGS) $(LDFLAGS_EXTRA)
# the C++ runtime of core/json_simd.cpp (the host and every program linking
# libretape.a; the .pc file says the same)
CXX_LIBS := -lstdc++
# dlopen (core/http.c loads libmicrohttpd): in libc since glibc 2.34, in libdl before
DL_LIBS := -ldl

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Compiler and linker flags of the dependencies, probed once into config.mk
# (after `make deps` has installed what is missing).
CONFIG := $(BUILD)/config.mk
NO_CONFIG_GOALS := clean deps help distclean
ifeq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
else
-include $(CONFIG)
endif

CORE_SRCS := core/nytime.c core/util.c core/hash.c core/slab.c core/dtoa.c core/readahead.c core/source.c core/kv.c core/kv_fingerprint.c core/ingest.c core/host.c core/fs.c \
             core/lua_retape.c core/lua_source.c core/lua_kv.c core/lua_time.c core/lua_ingest.c core/lua_sql.c \
             core/lua_json.c core/lua_fs.c \
             core/decode.c core/lua_decode.c \
             core/sandbox.c core/lua_sandbox.c core/pool.c core/lua_pool.c \
             core/pack.c core/lua_pack.c core/step.c core/lua_step.c
CORE_SRCS += core/http.c core/lua_http.c
CORE_CXX_SRCS := core/json_simd.cpp core/kv_hint.cpp
LUA_SRCS  := $(sort $(shell find lua -name '*.lua'))
CORE_OBJS := $(CORE_SRCS:core/%.c=$(BUILD)/core/%.o) $(CORE_CXX_SRCS:core/%.cpp=$(BUILD)/core/%.o) $(BUILD)/embedded_lua.o
LIB       := $(BUILD)/libretape.a
HOST      := $(BUILD)/retape
EMBED     := $(BUILD)/tools/embed

C_TESTS   := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/c/test_*.c)))
EXAMPLES  := $(BUILD)/examples/embed

.PHONY: all deps test-deps test-core-deps demo test test-core test-unit check bench install uninstall clean help valgrind fuzz fuzz-deps

all: $(HOST) $(LIB) retape

# A stable path for the host of the default build.
retape: $(HOST)
	$(Q)ln -sf $(HOST) retape

deps:
	@if $(PKG_CONFIG) --exists $(PKGS) 2>/dev/null && command -v $(CC) >/dev/null && command -v $(CXX) >/dev/null \
	    && command -v objdump >/dev/null; then \
	  echo "deps: $(PKGS) found"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing $(DEBS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  echo "deps: installing $(DEBS) with sudo"; \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	else \
	  echo "deps: missing libraries; install them with:"; \
	  echo "  sudo apt-get install -y $(DEBS)"; exit 1; \
	fi

# install_tools(TARGET, CHECK, DEBS): installs DEBS unless the shell test
# CHECK passes (root, or sudo without a password; else it says what to run).
define install_tools
	@if $(2); then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "$(1): installing $(3)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(3) >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  echo "$(1): installing $(3) with sudo"; \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(3) >/dev/null; \
	else \
	  echo "$(1): the tests need: sudo apt-get install -y $(3)"; exit 1; \
	fi
endef

# The tests' tools (headless Chromium, Node, curl); quick when present.
test-deps:
	$(call install_tools,test-deps,command -v chromium >/dev/null && command -v node >/dev/null && command -v curl >/dev/null \
	    && [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ],$(TEST_DEBS))

# The tools of `make test-core` (Node, curl).
test-core-deps:
	$(call install_tools,test-core-deps,command -v node >/dev/null && command -v curl >/dev/null,$(TEST_CORE_DEBS))

# RocksDB is linked from its static archive when librocksdb-dev ships one
# (Debian's does), with the libraries the shared librocksdb names linked by
# soname under --as-needed, so that only those its objects reference are
# kept: the shared library is 11 MB of C++ that the dynamic loader maps and
# binds at every start of every command, 6-9 ms of every start (`retape
# --version` 21 -> 15 ms, a script's start 31 -> 22 ms).  Without the
# archive: the shared library, as pkg-config says.  A new archive (a RocksDB
# upgrade) probes again and rebuilds (ROCKSDB_ARCHIVE).
#
# Lua and lua-cjson are linked from their static archives in the same way,
# when liblua5.4-dev and lua-cjson-dev ship them (Debian's do): the
# interpreter is half of every receipt, and Debian builds its shared
# liblua5.4 differently from the archive (with the stack protector, for
# one): real days, one thread, 20 interleaved pairs, 0.91x wall for 0.45 %
# fewer instructions.
# The host then exports Lua's C API (LUA_EXPORTS; every symbol with a
# linker older than binutils 2.35), so that a C module a script loads
# through package.cpath binds to the host's Lua as before.
$(CONFIG): Makefile $(ROCKSDB_ARCHIVE) $(LUA_ARCHIVES)
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)mkdir -p $(dir $@)
	$(Q)so="$$($(PKG_CONFIG) --variable=libdir libmicrohttpd)/libmicrohttpd.so"; \
	    soname=$$(objdump -p "$$so" | awk '$$1 == "SONAME" { print $$2 }'); \
	    [ -n "$$soname" ] || { echo "$$so: no soname found by objdump -p (install binutils and libmicrohttpd-dev)" >&2; exit 1; }; \
	    rdir=$$($(PKG_CONFIG) --variable=libdir rocksdb); \
	    if [ -f "$$rdir/librocksdb.a" ] && [ -f "$$rdir/librocksdb.so" ]; then \
	      archive="$$rdir/librocksdb.a"; \
	      rocks="$$archive -Wl,--push-state,--as-needed$$(objdump -p "$$rdir/librocksdb.so" \
	        | awk '$$1 == "NEEDED" && $$2 !~ /^(libstdc\+\+|libm|libgcc_s|libc)\.so|^ld-linux/ { printf " -l:%s", $$2 }') -Wl,--pop-state"; \
	    else archive=; rocks=$$($(PKG_CONFIG) --libs rocksdb); fi; \
	    ldir=$$($(PKG_CONFIG) --variable=libdir lua5.4); \
	    if [ -f "$$ldir/liblua5.4.a" ] && [ -f "$$ldir/liblua5.4-cjson.a" ]; then \
	      luas="$$ldir/liblua5.4-cjson.a $$ldir/liblua5.4.a"; lualibs="$$luas $$($(PKG_CONFIG) --libs-only-l --static lua5.4 | sed 's/-llua5.4//')"; \
	      exports="-Wl,--export-dynamic-symbol=lua_* -Wl,--export-dynamic-symbol=luaL_* -Wl,--export-dynamic-symbol=luaopen_*"; \
	      ld --help 2>/dev/null | grep -q -e --export-dynamic-symbol || exports=-Wl,--export-dynamic; \
	    else luas=; lualibs=$$($(PKG_CONFIG) --libs lua5.4-cjson lua5.4); exports=; fi; \
	    { echo "DEP_CFLAGS := $$($(PKG_CONFIG) --cflags $(PKGS)) -DRETAPE_MHD_SONAME='\"$$soname\"'"; \
	      echo "ROCKSDB_ARCHIVE := $$archive"; \
	      echo "ROCKSDB_LIBS := $$rocks"; \
	      echo "LUA_ARCHIVES := $$luas"; \
	      echo "LUA_EXPORTS := $$exports"; \
	      echo "DEP_LIBS := $$lualibs $$($(PKG_CONFIG) --libs $(filter-out rocksdb lua5.4 lua5.4-cjson,$(LINKED_PKGS))) \$$(ROCKSDB_LIBS)"; \
	      echo "LUA_CFLAGS := $$($(PKG_CONFIG) --cflags lua5.4)"; \
	      echo "LUA_LIBS := $$($(PKG_CONFIG) --libs lua5.4)"; } > $@.tmp && mv $@.tmp $@

$(BUILD)/core/%.o: core/%.c $(CONFIG)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEP_CFLAGS) -c $< -o $@

$(BUILD)/core/%.o: core/%.cpp $(CONFIG)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CXXFLAGS) $(DEP_CFLAGS) -c $< -o $@

# The embed tool compiles the Lua layer with the host's Lua (the same
# package's library, linked shared: the bytecode is the host's).
$(EMBED): tools/embed.c $(CONFIG)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=c11 -O2 -Wall -Wextra -Werror $(LUA_CFLAGS) $(CFLAGS_EXTRA) $< -o $@ $(LUA_LIBS) $(LDFLAGS_EXTRA) -lm

$(BUILD)/embedded_lua.c: $(EMBED) $(LUA_SRCS)
	@$(if $(Q),echo "  EMBED   lua/ ($(words $(LUA_SRCS)) files)")
	$(Q)$(EMBED) $@.tmp $(LUA_SRCS) && mv $@.tmp $@

$(BUILD)/embedded_lua.o: $(BUILD)/embedded_lua.c $(CONFIG)
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(LIB): $(CORE_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(HOST): $(BUILD)/core/main.o $(LIB) $(ROCKSDB_ARCHIVE) $(LUA_ARCHIVES)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(LUA_EXPORTS) $< $(LIB) $(DEP_LIBS) $(CXX_LIBS) $(DL_LIBS) -lm -o $@

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEP_CFLAGS) -Itests/c $< $(LIB) $(DEP_LIBS) $(CXX_LIBS) $(DL_LIBS) -lm -o $@

$(BUILD)/tools/bench_floor: tools/bench_floor.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEP_CFLAGS) $< $(LIB) $(DEP_LIBS) $(CXX_LIBS) $(DL_LIBS) -lm -o $@

$(BUILD)/examples/embed: examples/embed.c $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DEP_CFLAGS) $< $(LIB) $(DEP_LIBS) $(CXX_LIBS) $(DL_LIBS) -lm -o $@

# --- fuzzing (clang's libFuzzer + ASan/UBSan; separate build dir) -----------

FUZZ_DEBS    := clang libclang-rt-dev
FUZZ_CC      ?= clang
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_KINDS   := jsonl sql payload simd gz sqlcut
FUZZ_FLAGS   := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g

# Installs clang and its libFuzzer/sanitizer runtime (libclang-rt-dev).
fuzz-deps:
	@if command -v $(FUZZ_CC) >/dev/null && ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then \
	  echo "fuzz-deps: $(FUZZ_CC) and libFuzzer found"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FUZZ_DEBS) >/dev/null; \
	else echo "fuzz-deps: install $(FUZZ_DEBS): sudo apt-get install -y $(FUZZ_DEBS)"; exit 1; fi

# The whole engine is rebuilt with clang and the fuzzer instrumentation.
$(FUZZ_BUILD)/libretape.a: $(CORE_SRCS) $(CORE_CXX_SRCS) $(BUILD)/embedded_lua.c $(CONFIG) | fuzz-deps
	@mkdir -p $(FUZZ_BUILD)/core
	$(Q)for f in $(CORE_SRCS) $(BUILD)/embedded_lua.c; do \
	  $(FUZZ_CC) -std=c11 $(FUZZ_FLAGS) -Icore -I$(BUILD) $(DEP_CFLAGS) -c $$f -o $(FUZZ_BUILD)/core/$$(basename $$f .c).o || exit 1; \
	done
	$(Q)for f in $(CORE_CXX_SRCS); do \
	  $(FUZZ_CXX) -std=c++17 $(FUZZ_FLAGS) -Icore $(DEP_CFLAGS) -c $$f -o $(FUZZ_BUILD)/core/$$(basename $$f .cpp).o || exit 1; \
	done
	$(Q)rm -f $@ && ar rcs $@ $(FUZZ_BUILD)/core/*.o

# Linked by clang++: the C++ parts of the sanitizer runtimes come with it.
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_target.c $(FUZZ_BUILD)/libretape.a
	$(Q)$(FUZZ_CC) -std=c11 $(FUZZ_FLAGS) -DFUZZ_KIND='"$*"' -Icore $(DEP_CFLAGS) -c $< -o $@.o
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $@.o $(FUZZ_BUILD)/libretape.a $(DEP_LIBS) $(DL_LIBS) -lm -o $@

# Runs each target FUZZ_SECONDS on a copy of its corpus (new inputs are kept
# under build/fuzz/corpus-KIND; crashes in build/fuzz/crash-*).
fuzz: $(FUZZ_KINDS:%=$(FUZZ_BUILD)/fuzz_%)
	$(Q)found=0; for k in $(FUZZ_KINDS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$k && cp -n tests/fuzz/corpus/$$k/* $(FUZZ_BUILD)/corpus-$$k/ 2>/dev/null; \
	  echo "fuzz $$k: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_BUILD)/fuzz_$$k -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 \
	    -timeout=20 -artifact_prefix=$(FUZZ_BUILD)/crash-$$k- -print_final_stats=1 $(FUZZ_BUILD)/corpus-$$k \
	    > $(FUZZ_BUILD)/fuzz-$$k.log 2>&1; status=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|fuzz )' $(FUZZ_BUILD)/fuzz-$$k.log; \
	  if [ $$status -ne 0 ]; then echo "fuzz $$k: FINDING (see $(FUZZ_BUILD)/fuzz-$$k.log and crash-$$k-*)"; found=1; fi; \
	done; exit $$found

# --- user-facing targets ----------------------------------------------------

# ./retape: the release build's host, left in place by demo and test.
LINK := $(if $(filter 1,$(SANITIZE)),,retape)

demo: $(HOST) $(LINK)
	$(Q)RETAPE=$(HOST) DATA=$(DATA) sh examples/demo.sh

test check: $(HOST) $(LINK) $(C_TESTS) $(EXAMPLES) test-deps
	$(Q)RETAPE=$(abspath $(HOST)) BUILD=$(abspath $(BUILD)) DATA=$(DATA) \
	  SANITIZE=$(SANITIZE) bash tests/run.sh

# The C unit tests and the Lua tests of the engine API only (CI runs them
# again with clang: CC=clang CXX=clang++ BUILD=build/clang).
test-unit: $(HOST) $(C_TESTS)
	$(Q)RETAPE=$(abspath $(HOST)) BUILD=$(abspath $(BUILD)) DATA=$(DATA) \
	  SANITIZE=$(SANITIZE) UNIT=1 bash tests/run.sh

# Every suite but the two that drive headless Chromium (no browser needed).
test-core: $(HOST) $(LINK) $(C_TESTS) $(EXAMPLES) test-core-deps
	$(Q)RETAPE=$(abspath $(HOST)) BUILD=$(abspath $(BUILD)) DATA=$(DATA) \
	  SANITIZE=$(SANITIZE) BROWSER=0 bash tests/run.sh


bench: $(HOST) $(BUILD)/tools/bench_floor
	$(Q)RETAPE=$(abspath $(HOST)) FLOOR=$(abspath $(BUILD)/tools/bench_floor) DATA=$(DATA) bash tools/bench.sh

valgrind: $(HOST) $(C_TESTS) test-deps
	$(Q)RETAPE=$(abspath $(HOST)) BUILD=$(abspath $(BUILD)) DATA=$(DATA) \
	  VALGRIND=1 bash tests/run.sh

# Files generated from the command line's own help texts for `install`.
GEN := $(BUILD)/share
$(GEN)/retape.1 $(GEN)/retape.bash $(GEN)/_retape: $(HOST) tools/gen_install.lua
	@mkdir -p $(GEN)
	$(Q)$(HOST) run tools/gen_install.lua man > $(GEN)/retape.1
	$(Q)$(HOST) run tools/gen_install.lua bash > $(GEN)/retape.bash
	$(Q)$(HOST) run tools/gen_install.lua zsh > $(GEN)/_retape

# pkg-config file: static library, so the dependencies are Requires.
# Rewritten on every install (it holds PREFIX).
.PHONY: $(GEN)/retape.pc
$(GEN)/retape.pc: Makefile core/retape.h
	@mkdir -p $(GEN)
	$(Q)printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: retape' 'Description: replay engine for TradingView receipts with Lua rules' \
	  "Version: $$(sed -n 's/^#define RETAPE_VERSION "\(.*\)"/\1/p' core/retape.h)" \
	  'Requires: $(LINKED_PKGS)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lretape -lstdc++ -ldl -lm' > $@

INSTALL_FILES := bin/retape lib/libretape.a include/retape.h lib/pkgconfig/retape.pc \
  share/retape/scripts/levels.lua share/retape/scripts/replay-ingest.lua share/man/man1/retape.1 \
  share/bash-completion/completions/retape share/zsh/site-functions/_retape \
  share/doc/retape/README.md share/doc/retape/SCRIPTING.md share/doc/retape/RULES.md

install: $(HOST) $(LIB) $(GEN)/retape.1 $(GEN)/retape.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include \
	  $(DESTDIR)$(PREFIX)/share/retape/scripts $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/doc/retape
	install -m 755 $(HOST) $(DESTDIR)$(PREFIX)/bin/retape
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libretape.a
	install -m 644 core/retape.h $(DESTDIR)$(PREFIX)/include/retape.h
	install -m 644 $(GEN)/retape.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/retape.pc
	install -m 644 scripts/levels.lua scripts/replay-ingest.lua $(DESTDIR)$(PREFIX)/share/retape/scripts/
	install -m 644 $(GEN)/retape.1 $(DESTDIR)$(PREFIX)/share/man/man1/retape.1
	install -m 644 $(GEN)/retape.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/retape
	install -m 644 $(GEN)/_retape $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_retape
	install -m 644 README.md SCRIPTING.md RULES.md $(DESTDIR)$(PREFIX)/share/doc/retape/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALL_FILES))

clean:
	rm -rf build retape

help:
	@sed -n '2,18p' Makefile | sed 's/^# \{0,1\}//'

-include $(CORE_OBJS:.o=.d) $(BUILD)/core/main.d
