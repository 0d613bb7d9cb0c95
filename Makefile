# Bulwark - GNU Make + pkg-config. See README.md.
#   make            build build/bulwark
#   make run        install deps, build, run on etc/bulwark.yaml (CONFIG=... to override)
#   make test       install deps, build, run every suite (unit, fuzz corpus replay, e2e,
#                   the package)
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS (default 60), no merge
#   make fuzz-long  the campaign: each target FUZZ_SECONDS (default 600), new coverage
#                   merged into tests/fuzz/corpus/ (tests/fuzz/README.md)
#   make bench      ../shared/bench: Bulwark beside the peers (warm cache), then
#                   bench/cold.sh (empty caches over bench/internet)
#   make man        the man pages (pandoc) in build/man
#   make install    DESTDIR= PREFIX=/usr/local: bulwark, bulwarkctl, /etc/bulwark, data, man
#   make deb        the Debian package: build/deb/bulwark_VERSION_ARCH.deb
#   make test-package  the package: lintian, installed into a scratch root and checked
#   SANITIZE=1      ASan + UBSan build (in build-san/)
#   ALLOC_FAULTS=1  ASan + UBSan build whose own allocations can be made to fail
#                   (BW_ALLOC_FAIL_AT=N, in build-alloc/; docs/internals/alloc-faults.md)
#   make test-alloc the allocation-failure sweep (tests/alloc/sweep.sh; ALLOC_SWEEP=full
#                   for every N, several minutes; make test runs the short form)

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
# the dashboard's static files (admin.www-dir's default): the checkout's www/; a package
# installs them in SHAREDIR/www
WWWDIR  ?= $(abspath www)
# the config file bulwark and bulwarkctl read without -c: the checkout's for `make run`;
# an install sets SYSCONFDIR/bulwark/bulwark.yaml
CONF_PATH ?= etc/bulwark.yaml
# bulwark --version: git describe at build time (tools/version.sh)
# (a package build, from a copy of the tree without .git, passes it in)
ifeq ($(origin BW_VERSION),undefined)
BW_VERSION := $(shell tools/version.sh)
endif

ifeq ($(ALLOC_FAULTS),1)
BUILD   ?= build-alloc
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     += -DBW_ALLOC_FAULTS
else ifeq ($(SANITIZE),1)
BUILD   ?= build-san
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
OPT     := -O2 -g -DNDEBUG
endif

# what the environment gave (a package build's hardening flags), for the install sub-make
ENV_CFLAGS := $(CFLAGS)
ENV_LDLIBS := $(LDLIBS)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_CFLAGS += -I$(BUILD)/gen
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wvla
CFLAGS  += -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) -Isrc $(PKG_CFLAGS) -pthread -MMD -MP
CFLAGS  += -DBW_CONF_DEFAULT_PATH='"$(CONF_PATH)"'
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

.PHONY: all run test unit fuzz-replay e2e test-faults fuzz fuzz-long fuzz-build bench deps clean check-banned FORCE
.PHONY: man install install-build deb test-package test-alloc
all: $(BUILD)/bulwark $(BUILD)/bulwarkctl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/dnstap.pb-c.c $(BUILD)/gen/dnstap.pb-c.h: src/telemetry/dnstap.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Isrc/telemetry $<
$(BUILD)/gen/dnstap.pb-c.o: $(PB_C)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/src/telemetry/dnstap.o: $(BUILD)/gen/dnstap.pb-c.h

$(BUILD)/src/conf/conf_guard.o: CFLAGS += -DBW_DATADIR='"$(DATADIR)"'
$(BUILD)/src/conf/conf_admin.o: CFLAGS += -DBW_WWWDIR='"$(WWWDIR)"'

# version.h is rewritten only when the version changes, so only its users are rebuilt
$(BUILD)/gen/version.h: FORCE
	@mkdir -p $(@D)
	@echo '#define BW_VERSION "$(BW_VERSION)"' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/src/main.o $(BUILD)/src/telemetry/dnstap.o: $(BUILD)/gen/version.h

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/bulwark: $(BUILD)/src/main.o $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# bulwarkctl alone links libqrencode (client setup --qr); the daemon does not
CTL_PKGS := libqrencode
CTL_OBJ  := $(patsubst %.c,$(BUILD)/%.o,tools/bulwarkctl.c $(sort $(wildcard tools/ctl_*.c)))
$(CTL_OBJ): CFLAGS += $(shell pkg-config --cflags $(CTL_PKGS) 2>/dev/null)

# the allocation-failure build: Bulwark's own allocations (src/, tools/) are counted
# (src/base/alloc_fault.h), the tests' and the libraries' are not
ifeq ($(ALLOC_FAULTS),1)
$(LIB_OBJ) $(CTL_OBJ) $(BUILD)/src/main.o $(BUILD)/tools/ctl_text.o: CFLAGS += -include base/alloc_fault.h
endif

$(BUILD)/bulwarkctl: $(CTL_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs $(CTL_PKGS) 2>/dev/null)

# the team's real data, beside the checkout (suites that use it say when it is absent)
SHARED_DATA ?= $(abspath ../shared/data)
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSHARED='"$(SHARED_DATA)"' -Itests/unit -o $@ $< $(LIB) $(LDLIBS) -lcmocka

# bulwarkctl's pure helpers (tools/ctl_text.c) are unit-tested as they are
$(BUILD)/tests/test_ctl: tests/unit/test_ctl.c $(BUILD)/tools/ctl_text.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -Itools -o $@ $< $(BUILD)/tools/ctl_text.o $(LIB) $(LDLIBS) -lcmocka

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

# the fault-injection suite (tests/faults/README.md); FAULTS_SHORT=1: the short form CI runs
test-faults: all
	BULWARK=$(BUILD)/bulwark FAULTS_SHORT=$(FAULTS_SHORT) tests/faults/run.sh

check-banned:
	@tools/check-banned.sh

test: deps
	@$(MAKE) --no-print-directory all unit fuzz-replay check-banned
	@$(MAKE) --no-print-directory test-alloc
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory test-package
endif
	@$(MAKE) --no-print-directory e2e

# the allocation-failure sweep (tests/alloc/sweep.py, docs/internals/alloc-faults.md) on
# its own build (build-alloc/): the short form (regressions + a few N per program, under a
# minute) by default and in make test; ALLOC_SWEEP=full for every N (about 15 minutes)
ALLOC_SWEEP ?= short
test-alloc:
	@$(MAKE) --no-print-directory ALLOC_FAULTS=1 BUILD=build-alloc all \
	  $(UNIT_SRC:tests/unit/%.c=build-alloc/tests/%)
	tests/alloc/sweep.py $(if $(filter full,$(ALLOC_SWEEP)),--full)

# libFuzzer targets (clang): the library is built ONCE with coverage instrumentation and
# the sanitizers into $(FUZZ_BUILD)/libbulwark.a, every target is linked against it, and
# tools/fuzz-run.sh runs them one after another (one libFuzzer process at a time) on a
# work copy of each corpus. FUZZ_TARGETS= a subset (fuzz_query fuzz_rpz ...),
# FUZZ_NICE= the nice level, FUZZ_MAX_LEN= the input cap (default 4096), FUZZ_KEEP_GOING=1
# goes on to the next target after a crash. `make deps` installs clang.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_NICE    ?= 15
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
		-Isrc $(PKG_CFLAGS) -pthread -MMD -MP -DBW_CONF_DEFAULT_PATH='"$(CONF_PATH)"'
FUZZ_OBJ     := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/gen/dnstap.pb-c.o
FUZZ_LIB     := $(FUZZ_BUILD)/libbulwark.a
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%.o: %.c | $(PB_C) $(BUILD)/gen/version.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/gen/dnstap.pb-c.o: $(PB_C)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/src/conf/conf_guard.o: FUZZ_CFLAGS += -DBW_DATADIR='"$(DATADIR)"'
$(FUZZ_BUILD)/src/conf/conf_admin.o: FUZZ_CFLAGS += -DBW_WWWDIR='"$(WWWDIR)"'
$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_BIN)
fuzz: fuzz-build
	@FUZZ_NICE=$(FUZZ_NICE) FUZZ_MAX_LEN=$(FUZZ_MAX_LEN) FUZZ_KEEP_GOING=$(FUZZ_KEEP_GOING) \
	  tools/fuzz-run.sh $(FUZZ_BUILD) $(or $(FUZZ_SECONDS),60) 0 $(FUZZ_TARGETS)
fuzz-long: fuzz-build
	@FUZZ_NICE=$(FUZZ_NICE) FUZZ_MAX_LEN=$(FUZZ_MAX_LEN) FUZZ_KEEP_GOING=$(FUZZ_KEEP_GOING) \
	  tools/fuzz-run.sh $(FUZZ_BUILD) $(or $(FUZZ_SECONDS),600) 1 $(FUZZ_TARGETS)

bench: deps all
	@tools/deps.sh bench
	bench/run.sh
	bench/cold.sh

clean:
	rm -rf build build-san build-alloc $(FUZZ_BUILD)

# ---- man pages, install, Debian package ----
# The man pages are generated from what already documents each program, never kept by
# hand: bulwark(8) and bulwarkctl(8) from their --help, bulwark.yaml(5) from docs/config.md.
MAN := $(BUILD)/man/bulwark.8 $(BUILD)/man/bulwarkctl.8 $(BUILD)/man/bulwark.yaml.5
man: $(MAN)
$(BUILD)/man/%.8: $(BUILD)/% tools/man.sh
	@mkdir -p $(@D)
	tools/man.sh help $< $(BW_VERSION) >$@
$(BUILD)/man/bulwark.yaml.5: docs/config.md tools/man.sh tools/man-tables.lua
	@mkdir -p $(@D)
	tools/man.sh config $< $(BW_VERSION) >$@

# make install DESTDIR= PREFIX=: programs built for the installed paths (the default config
# SYSCONFDIR/bulwark/bulwark.yaml, the guard's data in PREFIX/share/bulwark) in a build
# folder of their own, so the checkout's build/ keeps working on etc/ for `make run`.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
SHAREDIR   ?= $(PREFIX)/share/bulwark
MANDIR     ?= $(PREFIX)/share/man
IBUILD     ?= $(BUILD)/install
IPATHS     := $(SYSCONFDIR)/bulwark/bulwark.yaml $(SHAREDIR) $(SHAREDIR)/www
install-build:
	@mkdir -p $(IBUILD)
	@echo '$(IPATHS)' | cmp -s - $(IBUILD)/.paths || { rm -rf $(IBUILD); mkdir -p $(IBUILD); \
	  echo '$(IPATHS)' >$(IBUILD)/.paths; }
	@env CFLAGS='$(ENV_CFLAGS)' LDLIBS='$(ENV_LDLIBS)' $(MAKE) --no-print-directory BUILD=$(IBUILD) DATADIR=$(SHAREDIR) WWWDIR=$(SHAREDIR)/www \
	  CONF_PATH=$(SYSCONFDIR)/bulwark/bulwark.yaml all man $(IBUILD)/bulwark.yaml
install: install-build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SHAREDIR)/guard $(DESTDIR)$(SHAREDIR)/www \
	  $(DESTDIR)$(SYSCONFDIR)/bulwark/feeds
	install -m 0755 $(IBUILD)/bulwark $(DESTDIR)$(SBINDIR)/bulwark
	install -m 0755 $(IBUILD)/bulwarkctl $(DESTDIR)$(BINDIR)/bulwarkctl
	install -m 0644 $(IBUILD)/man/bulwark.8 $(IBUILD)/man/bulwarkctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(IBUILD)/man/bulwark.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 etc/guard/popular-domains.txt etc/guard/README.md $(DESTDIR)$(SHAREDIR)/guard/
	install -m 0644 $(WWW_FILES) $(DESTDIR)$(SHAREDIR)/www/
	install -m 0644 $(IBUILD)/bulwark.yaml $(DESTDIR)$(SYSCONFDIR)/bulwark/bulwark.yaml
	install -m 0644 etc/feeds/malware.domains etc/feeds/phishing.hosts \
	  $(DESTDIR)$(SYSCONFDIR)/bulwark/feeds/

# the dashboard's static files (docs/dashboard.md), served by the admin listener from
# SHAREDIR/www; Chart.js comes from Debian's libjs-chart.js, not from here
WWW_FILES := $(wildcard www/*.html www/*.js www/*.css www/*.svg)

# the installed config: the shipped etc/bulwark.yaml with the installed paths and port 53
$(BUILD)/bulwark.yaml: etc/bulwark.yaml tools/packaged-config.sh
	tools/packaged-config.sh $< $(SYSCONFDIR)/bulwark/bulwark.yaml >$@

# make deb: dpkg-buildpackage (debian/rules runs make install into the package), the .deb
# moved to build/deb/
deb:
	@tools/deb.sh

# the package: lintian (no errors) and installed into a scratch root with dpkg --root and
# checked (tests/package.sh); make test runs it (the package builds in about 30 s)
test-package: deb
	@echo "== lintian"
	@rc=0; lintian --fail-on error build/deb/bulwark_*.deb >build/deb/lintian.log 2>&1 || rc=$$?; \
	  grep -v 'root privileges' build/deb/lintian.log; \
	  echo "lintian: $$(grep -c '^E:' build/deb/lintian.log) errors, $$(grep -c '^W:' build/deb/lintian.log) warnings"; exit $$rc
	@echo "== package"
	tests/package.sh build/deb/bulwark_*_$$(dpkg --print-architecture).deb

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d $(CTL_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
