# SPDX-License-Identifier: MIT
#
# waygate: one static musl binary per architecture.
#
#   make                     build/waygate for this machine (x86_64 here)
#   make ARCH=aarch64        build/aarch64/waygate (also ARCH=armv7, x86_64)
#   make BOARD=name          build/name/waygate with board/name/board.mk's
#                            ARCH, CPU_CFLAGS and BOARD_CPPFLAGS
#   make check               unit tests (under qemu-user for a foreign ARCH)
#   make test                everything; ends with "N passed, N failed"
#   make run                 build, then tests/run-local (the seed scenario)
#   make SANITIZE=1 check    glibc + ASan/UBSan twin in build/san/
#   make test-san            that twin's unit tests and integration cases
#                            (also: make test SANITIZE=1)
#   make deps                just the third-party libraries (mk/deps.mk)
#   make deps-install        the Debian build packages (as root)
#   make headers | fuzz | integration | bench | firmware | firmware-test
#   make clean | distclean   build/ except build/deps/ | all of build/
#
# V=1 shows commands. WERROR=1 (or CI=true) adds -Werror. Local settings go
# in an untracked config.mak (e.g. OPT = -O2, or V = 1). Every directory the
# build writes is under build/, plus the download and library cache in
# $(WAYGATE_CACHE) (default ~/.cache/waygate), which fresh clones reuse.

VERSION := 0.1.0

-include config.mak

# --- what to build for ----------------------------------------------------

HOST_ARCH := $(shell uname -m | sed -e 's/^armv[78].*/armv7/' -e 's/^arm64$$/aarch64/')

# A board may set ARCH, CPU_CFLAGS and BOARD_CPPFLAGS (e.g.
# -DWG_BOARD='"name"'), and append to DEPS_CFLAGS to build the libraries
# for it too (another cache key: they are rebuilt or copied from the cache).
DEPS_CFLAGS ?= -Os -ffunction-sections -fdata-sections
ifneq ($(BOARD),)
ifneq ($(wildcard board/$(BOARD)/board.mk),)
include board/$(BOARD)/board.mk
endif
endif
ARCH ?= $(HOST_ARCH)
ifneq ($(filter 1,$(SANITIZE) $(SAN) $(FUZZER)),)
override ARCH := $(HOST_ARCH)
endif

# TRIPLE is musl's target, CROSS the prefix of Debian's cross gcc and
# binutils, QEMU what runs foreign test binaries here.
ifeq ($(ARCH),x86_64)
TRIPLE := x86_64-linux-musl
CROSS  := x86_64-linux-gnu-
QEMU   := qemu-x86_64-static
else ifeq ($(ARCH),aarch64)
TRIPLE := aarch64-linux-musl
CROSS  := aarch64-linux-gnu-
QEMU   := qemu-aarch64-static
else ifeq ($(ARCH),armv7)
TRIPLE := arm-linux-musleabihf
CROSS  := arm-linux-gnueabihf-
QEMU   := qemu-arm-static
else
$(error ARCH=$(ARCH): expected x86_64, aarch64 or armv7)
endif
RUN := $(if $(filter $(ARCH),$(HOST_ARCH)),,$(QEMU))

# The sanitizer twin (SAN=1 is accepted too) is a glibc host build: musl
# has no ASan. It gets its own tree and its own build of the libraries
# (build/deps/san). FUZZER=1 is the same with clang and libFuzzer
# (mk/fuzz.mk), in build/fuzz, sharing those libraries.
SANITIZE ?= $(SAN)
ifneq ($(filter 1,$(SANITIZE) $(FUZZER)),)
GLIBC     := 1
B         := $(if $(filter 1,$(FUZZER)),build/fuzz,build/san)
BIN       := $(B)/waygate
DEPS_ARCH := san
DEPS_CC   := gcc
TRIPLE    := $(CROSS:-=)
CC        := $(if $(filter 1,$(FUZZER)),clang,gcc)
RUN       :=
else ifneq ($(BOARD),)
# A board build has its own tree (its CPU flags and defines differ) and
# binary, build/<board>/waygate, which firmware/ picks up; the libraries
# are the architecture's.
B         := build/$(BOARD)
BIN       := $(B)/waygate
DEPS_ARCH := $(ARCH)
DEPS_CC   :=
CC        := build/deps/$(ARCH)/sysroot/bin/musl-gcc
else
B         := build/$(ARCH)
BIN       := $(if $(filter $(ARCH),$(HOST_ARCH)),build/waygate,$(B)/waygate)
DEPS_ARCH := $(ARCH)
DEPS_CC   :=
CC        := build/deps/$(ARCH)/sysroot/bin/musl-gcc
endif
STRIP := $(CROSS)strip

# --- flags ------------------------------------------------------------------

OPT   ?= -Os
DEBUG ?= -g0
WARN  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual
ifeq ($(CI),true)
WERROR ?= 1
endif
ifeq ($(WERROR),1)
WARN += -Werror
endif

BUILD_ID := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
MUSL_VERSION := $(shell awk '$$2 == "version:" && $$3 == "musl" { print $$4 }' deps/deps.lock)
ifneq ($(BOARD),)
ifeq ($(findstring WG_BOARD,$(BOARD_CPPFLAGS) $(CPPFLAGS)),)
BOARD_CPPFLAGS += -DWG_BOARD='"$(BOARD)"'
endif
endif

WG_CFLAGS   := -std=gnu11 $(OPT) $(DEBUG) -ffunction-sections -fdata-sections $(WARN) \
	$(CPU_CFLAGS) $(CFLAGS)
WG_CPPFLAGS := -D_GNU_SOURCE -Isrc -I$(B)/gen -Ibuild/deps/$(DEPS_ARCH)/include \
	-DWG_VERSION='"$(VERSION)"' -DWG_BUILD='"$(BUILD_ID)"' -DWG_ARCH='"$(ARCH)"' \
	-DWG_MUSL_VERSION='"$(MUSL_VERSION)"' $(BOARD_CPPFLAGS) $(CPPFLAGS)
WG_LDFLAGS  := -static -Wl,--gc-sections -Wl,-z,stack-size=1048576 $(LDFLAGS)
WG_LIBS     := -Lbuild/deps/$(DEPS_ARCH)/lib -lmbedtls -lmbedx509 -lmbedcrypto \
	-lmicrohttpd -lsqlite3 -lyaml -lnghttp2 -lyyjson -lpthread $(LIBS)

ifeq ($(GLIBC),1)
SAN_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_FLAGS   += $(if $(filter 1,$(FUZZER)),-fsanitize=fuzzer-no-link)
WG_CFLAGS   += -O1 -g $(SAN_FLAGS)
WG_LDFLAGS  := -Wl,--gc-sections $(SAN_FLAGS) $(LDFLAGS)
KHDR        :=
else
# musl-gcc's -nostdinc hides <linux/*.h>: give back only linux/, asm/ and
# asm-generic/ through a directory of symlinks, searched after musl's
# headers. The cross packages keep them in /usr/<gnu triple>/include.
KHDR := $(if $(wildcard /usr/$(CROSS:-=)/include/asm),/usr/$(CROSS:-=)/include,/usr/include)
KASM := $(if $(wildcard /usr/$(CROSS:-=)/include/asm),$(KHDR)/asm,/usr/include/$(CROSS:-=)/asm)
WG_CPPFLAGS += -idirafter $(B)/kinc
endif

Q := $(if $(filter 1,$(V)),,@)
ifneq ($(V),1)
MAKEFLAGS += --no-print-directory
endif

# --- sources ----------------------------------------------------------------

SRCS      := $(sort $(wildcard src/*/*.c))
OBJS      := $(SRCS:%.c=$(B)/obj/%.o)
MAIN_OBJ  := $(B)/obj/src/main.o
WEB_FILES := $(shell find web -type f 2>/dev/null | LC_ALL=C sort)
WEB_OBJ   := $(B)/obj/gen/web_assets.o
LIBWG     := $(B)/libwaygate.a

# Unit tests: one binary, tests/unit/runner.c + every test_*.c, linked
# against libwaygate.a (all of src/ but main.c). A test may #include the
# src .c it tests: its object then defines every symbol of that file, so the
# archive member is never pulled in and there is no duplicate. Rule: a src
# .c is #included by at most one test file.
TEST_SRCS := $(sort $(wildcard tests/unit/*/test_*.c))
TEST_OBJS := $(TEST_SRCS:%.c=$(B)/obj/%.o) $(B)/obj/tests/unit/runner.o
TEST_BIN  := $(B)/unit-tests

HEADERS   := $(sort $(wildcard src/*.h src/*/*.h))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/*.c))

ALL_OBJS  := $(MAIN_OBJ) $(OBJS) $(WEB_OBJ) $(TEST_OBJS)

.PHONY: all check test test-san run integration headers fuzz fuzz-replay bench \
	firmware firmware-test clean distclean deps-install strip FORCE
.DEFAULT_GOAL := all
# Keep objects that only pattern-rule chains need (fuzz, tests).
.SECONDARY:

all: $(BIN)

include mk/deps.mk

# --- compile and link -------------------------------------------------------

# Every object waits for the libraries (their headers) and the generated
# files; -MMD tracks headers from then on.
$(B)/obj/%.o: %.c $(DEPS_DONE) | $(B)/gen/web_assets.stamp $(if $(KHDR),$(B)/kinc/.stamp)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(WG_CPPFLAGS) $(WG_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/obj/src/cli/version.o: $(B)/gen/build-id

$(WEB_OBJ): $(B)/gen/web_assets.stamp $(DEPS_DONE)
	@mkdir -p $(@D)
	@echo "  CC      web_assets.c"
	$(Q)$(CC) $(WG_CPPFLAGS) $(WG_CFLAGS) -c -o $@ $(B)/gen/web_assets.c

$(BIN): $(MAIN_OBJ) $(OBJS) $(WEB_OBJ)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	$(Q)$(CC) $(WG_CFLAGS) $(WG_LDFLAGS) -o $@ $^ $(WG_LIBS)

$(LIBWG): $(OBJS) $(WEB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(CROSS)ar rcs $@ $^

# A stripped copy, for measuring (the image build strips its own).
strip: $(BIN)
	$(Q)$(STRIP) -o $(BIN).stripped $(BIN)
	@echo "$(BIN).stripped: $$(stat -c %s $(BIN).stripped) bytes"

# --- generated files --------------------------------------------------------

# Files that must change only when their content does (FORCE + cmp).
$(B)/gen/build-id: FORCE
	@mkdir -p $(@D)
	@echo '$(BUILD_ID)' | cmp -s - $@ || echo '$(BUILD_ID)' >$@

$(B)/gen/web.list: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' $(WEB_FILES) | cmp -s - $@ || printf '%s\n' $(WEB_FILES) >$@

# web/ -> web_assets.c + web_assets.h (struct web_asset, web_assets[]).
$(B)/gen/web_assets.stamp: $(B)/gen/web.list $(WEB_FILES) mk/web-assets
	@echo "  GEN     web_assets.c ($(words $(WEB_FILES)) files)"
	$(Q)mk/web-assets $(B)/gen web $(WEB_FILES)
	$(Q)touch $@

$(B)/kinc/.stamp:
	@mkdir -p $(@D)
	$(Q)ln -sfn $(KHDR)/linux $(@D)/linux && ln -sfn $(KASM) $(@D)/asm && \
		ln -sfn $(KHDR)/asm-generic $(@D)/asm-generic && touch $@

# --- unit tests -------------------------------------------------------------

# The registry: every line starting TEST(name) becomes T(name).
$(B)/gen/tests.inc: FORCE
	@mkdir -p $(@D)
	@sed -n 's/^TEST(\([A-Za-z0-9_]*\)).*/T(\1)/p' /dev/null $(TEST_SRCS) >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(B)/obj/tests/%.o: WG_CPPFLAGS += -Itests/unit
$(B)/obj/tests/unit/runner.o: $(B)/gen/tests.inc

$(TEST_BIN): $(TEST_OBJS) $(LIBWG)
	@echo "  LINK    $@"
	$(Q)$(CC) $(WG_CFLAGS) $(WG_LDFLAGS) -o $@ $(TEST_OBJS) $(LIBWG) $(WG_LIBS)

check: $(TEST_BIN)
	$(Q)$(RUN) $(TEST_BIN)

# --- other checks -----------------------------------------------------------

# Every header compiles on its own (STYLE.md section 2).
headers: $(HEADERS:%=$(B)/hdr/%.ok)
$(B)/hdr/%.h.ok: %.h $(DEPS_DONE) | $(B)/gen/web_assets.stamp $(if $(KHDR),$(B)/kinc/.stamp)
	@mkdir -p $(@D)
	@echo "  HDR     $<"
	$(Q)echo '#include "$(<:src/%=%)"' | \
		$(CC) $(WG_CPPFLAGS) $(WG_CFLAGS) -fsyntax-only -x c - && touch $@

include mk/fuzz.mk

# With SANITIZE=1 the cases run against build/san/waygate and fail on any
# ASan/UBSan report (tests/integration/run).
integration: all
	$(Q)if [ -x tests/integration/run ]; then WAYGATE_BIN=$(abspath $(BIN)) \
		SUITE='integration$(if $(GLIBC), (sanitizers))' tests/integration/run; \
	else echo "integration: no tests/integration/run, skipped"; fi

# The sanitizer twin: its unit tests, then every integration case against it.
test-san:
	+$(Q)$(MAKE) SANITIZE=1 all check
	+$(Q)$(MAKE) SANITIZE=1 integration

# deps-install when packages are missing (needs root then), then every suite.
# `make test SANITIZE=1` is the sanitizer twin's run (test-san).
test:
	$(Q)deps/install --check || deps/install
ifeq ($(filter 1,$(SANITIZE)),1)
	+$(Q)$(MAKE) test-san
else
	+$(Q)MAKE='$(MAKE)' mk/test-all
endif

run:
	$(Q)deps/install --check || deps/install
	+$(Q)$(MAKE) all
	$(Q)if [ -x tests/run-local ]; then exec tests/run-local; \
	else echo "run: tests/run-local is not there yet; built $(BIN)"; fi

bench: all
	$(Q)if [ -x tests/bench/run ]; then exec tests/bench/run; \
	else echo "bench: no tests/bench/run"; fi

# The image is assembled by firmware/ (its own Makefile or build script).
firmware firmware-test: all
	$(Q)if [ -f firmware/Makefile ]; then \
		$(MAKE) -C firmware BOARD='$(BOARD)' ARCH='$(ARCH)' \
			WAYGATE_BIN=$(abspath $(BIN)) $(if $(filter firmware-test,$@),test,all); \
	elif [ -x firmware/build ]; then \
		BOARD='$(BOARD)' ARCH='$(ARCH)' WAYGATE_BIN=$(abspath $(BIN)) \
			firmware/build $(if $(filter firmware-test,$@),test); \
	else echo "$@: no firmware/Makefile or firmware/build"; fi

deps-install:
	$(Q)deps/install

clean:
	$(Q)if [ -d build ]; then find build -mindepth 1 -maxdepth 1 ! -name deps -exec rm -rf {} +; fi

distclean:
	rm -rf build

-include $(ALL_OBJS:.o=.d) $(FUZZ_SRCS:%.c=$(B)/obj/%.d) $(B)/obj/mk/fuzz-replay.d
