# Bulwark - GNU Make + pkg-config. See README.md.
#   make            build build/bulwark
#   make run        install deps, build, run on etc/bulwark.yaml (CONFIG=... to override)
#   make test       install deps, build, run every suite (unit, fuzz corpus replay, e2e)
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench      ../shared/bench: Bulwark beside the peers
#   SANITIZE=1      ASan + UBSan build (in build-san/)

CC      ?= cc
PKGS    := libunbound libevent yaml-0.1 libzscanner jansson libcurl
PKGS    += libfstrm libprotobuf-c
PKGS    += libcrypto
PKGS    += sqlite3
PKGS    += libpsl icu-uc icu-i18n
PKGS    += openssl libevent_openssl libnghttp2
PKGS    += zlib
PKGS    += libsystemd
CONFIG  ?= etc/bulwark.yaml
# where the shipped data (guard/popular-domains.txt) is read from: the checkout's etc/ by
# default; a package sets DATADIR=/usr/share/bulwark and installs etc/guard there
DATADIR ?= $(abspath etc)
FUZZ_SECONDS ?= 60

ifeq ($(SANITIZE),1)
BUILD   ?= build-san
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2 -g -DNDEBUG
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_CFLAGS += -I$(BUILD)/gen
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wvla
CFLAGS  += -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) -Isrc $(PKG_CFLAGS) -pthread -MMD -MP
LDLIBS  += $(PKG_LIBS) -pthread

LIB_SRC := $(sort $(wildcard src/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libbulwark.a
# dnstap: protobuf-c code generated from src/telemetry/dnstap.proto at build time
PB_C    := $(BUILD)/gen/dnstap.pb-c.c
LIB_OBJ += $(BUILD)/gen/dnstap.pb-c.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/replay_%)

.PHONY: all run test unit fuzz-replay e2e fuzz bench deps clean check-banned
all: $(BUILD)/bulwark $(BUILD)/bulwarkctl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/dnstap.pb-c.c $(BUILD)/gen/dnstap.pb-c.h: src/telemetry/dnstap.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Isrc/telemetry $<
$(BUILD)/gen/dnstap.pb-c.o: $(PB_C)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/src/telemetry/dnstap.o: $(BUILD)/gen/dnstap.pb-c.h

$(BUILD)/src/conf/conf_guard.o: CFLAGS += -DBW_DATADIR='"$(DATADIR)"'

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bulwark: $(BUILD)/src/main.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bulwarkctl: $(BUILD)/tools/bulwarkctl.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the team's real data, beside the checkout (suites that use it say when it is absent)
SHARED_DATA ?= $(abspath ../shared/data)
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSHARED='"$(SHARED_DATA)"' -Itests/unit -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# fuzz targets built as ordinary programs that replay their saved corpus
$(BUILD)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay_main.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(LIB) $(LDLIBS)

# test tools (xfr_fetch: zone transfers against a real primary, tests/e2e/test_xfr.py)
$(BUILD)/tests/%: tests/tools/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

deps:
	@tools/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/bulwark -f -c $(CONFIG)

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

fuzz-replay: $(FUZZ_REPLAY)
	@fail=0; for t in $(FUZZ_REPLAY); do n=$${t##*/replay_}; echo "== $$n corpus"; \
	  $$t tests/fuzz/corpus/$$n || fail=1; done; exit $$fail

e2e: all $(BUILD)/tests/xfr_fetch
	BULWARK=$(BUILD)/bulwark tests/e2e/run.sh

check-banned:
	@tools/check-banned.sh

test: deps
	@$(MAKE) --no-print-directory all unit fuzz-replay check-banned
	@$(MAKE) --no-print-directory e2e

# libFuzzer targets (clang), each run for FUZZ_SECONDS on a copy of its corpus
FUZZ_CC ?= clang
fuzz: deps $(PB_C)
	@mkdir -p $(BUILD)/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  $(FUZZ_CC) -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    -o $(BUILD)/fuzz/$$n $$f $(LIB_SRC) $(PB_C) $(LDLIBS) || exit 1; \
	  mkdir -p $(BUILD)/fuzz/corpus-$$n; cp -n tests/fuzz/corpus/$$n/* $(BUILD)/fuzz/corpus-$$n/ 2>/dev/null; \
	  echo "== fuzzing $$n for $(FUZZ_SECONDS)s"; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(BUILD)/fuzz/corpus-$$n \
	    tests/fuzz/corpus/$$n >$(BUILD)/fuzz/$$n.log 2>&1 || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  tail -1 $(BUILD)/fuzz/$$n.log; done

bench: deps all
	bench/run.sh

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d $(BUILD)/tools/bulwarkctl.d
