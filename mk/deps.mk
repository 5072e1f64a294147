# SPDX-License-Identifier: MIT
#
# mk/deps.mk: the third-party libraries (musl, Mbed TLS, libmicrohttpd,
# SQLite, libyaml, nghttp2, yyjson), included by the top-level Makefile.
# Reads ARCH, TRIPLE, CROSS and DEPS_CC from it; provides `deps` and
# $(DEPS_DONE), which every waygate object depends on.
#
# Layout (everything under build/deps/ survives `make clean`):
#   $(WAYGATE_CACHE)/dl/             verified downloads (deps/fetch)
#   $(WAYGATE_CACHE)/deps/<arch>-<key>/  finished staging trees, any clone
#   build/deps/src/<pkg>/            patched sources, shared by all arches
#   build/deps/work/host/sqlite/     the SQLite amalgamation (host, once)
#   build/deps/work/<arch>/          build trees and one stamp per step
#   build/deps/<arch>/               staging: sysroot/ include/ lib/ and
#                                    .key-<key> once complete
#
# The key is a hash of every input that shapes the result: deps.lock, the
# Mbed TLS config, deps/patches/, deps/build, this file, the arch,
# DEPS_CFLAGS, MBEDTLS_OPT and the compiler version. A staged tree with the
# current key is used as is. Else a cached tree with that key is copied in
# (a fresh clone on this machine builds nothing). Else the steps run (their
# stamps follow make's usual timestamp rules, so a config change rebuilds
# only Mbed TLS) and the result is published to the cache. One flock
# serialises concurrent `make`s in the same tree. After editing a recipe in
# deps/build, remove its stamp (build/deps/work/<arch>/<step>.stamp) or run
# `make deps-rebuild`: recipe edits change the key but not the stamps.

WAYGATE_CACHE ?= $(HOME)/.cache/waygate
DEPS_CFLAGS   ?= -Os -ffunction-sections -fdata-sections
# Added after DEPS_CFLAGS for Mbed TLS only: handshakes are CPU-bound
# public-key math (-O2: 1.2-1.7x faster, about +40 KB on aarch64).
MBEDTLS_OPT   ?= -O2

DEPS_DL    := $(WAYGATE_CACHE)/dl
DEPS_SRC   := $(abspath build/deps/src)
DEPS_HOSTW := $(abspath build/deps/work/host)
DEPS_W     := $(abspath build/deps/work/$(DEPS_ARCH))
DEPS_OUT   := $(abspath build/deps/$(DEPS_ARCH))
DEPS_PKGS  := musl mbedtls libmicrohttpd sqlite3 libyaml nghttp2 yyjson
DEPS_STEPS := mbedtls mhd sqlite yaml nghttp2 yyjson

# Everything besides file contents that the key covers; also written to
# $(DEPS_W)/config, rewritten only when it changes, so steps depend on it.
DEPS_CONFIG := $(DEPS_ARCH) $(TRIPLE) $(DEPS_CFLAGS) \
	$(shell $(CROSS)gcc -dumpfullversion 2>/dev/null)
DEPS_INPUTS := deps/deps.lock deps/mbedtls_config.h deps/build mk/deps.mk \
	$(sort $(wildcard deps/patches/*/*.patch))
DEPS_KEY    := $(shell { cat $(DEPS_INPUTS); echo '$(DEPS_CONFIG) $(MBEDTLS_OPT)'; } | \
	sha256sum | cut -c1-16)
DEPS_DONE   := $(DEPS_OUT)/.key-$(DEPS_KEY)
DEPS_CACHED := $(WAYGATE_CACHE)/deps/$(DEPS_ARCH)-$(DEPS_KEY)

# What deps/build reads. Recipes that run it start with '+' so the make
# inside it (musl, Mbed TLS, libmicrohttpd) shares this make's -j slots.
DEPS_ENV = DL='$(DEPS_DL)' SRC='$(DEPS_SRC)' HOSTW='$(DEPS_HOSTW)' W='$(DEPS_W)' \
	OUT='$(DEPS_OUT)' TRIPLE='$(TRIPLE)' CROSS='$(CROSS)' DEPS_CC='$(DEPS_CC)' \
	CFLAGS='$(DEPS_CFLAGS)' MBEDTLS_OPT='$(MBEDTLS_OPT)' \
	LOCK='$(abspath deps/deps.lock)' DEPS_DIR='$(abspath deps)' MAKE='$(MAKE)'

.PHONY: deps deps-locked deps-rebuild deps-fetch deps-refresh

deps: $(DEPS_DONE)

# Outside the lock: only checks the key; the real work runs under flock in a
# sub-make so that a second `make` waits and then finds everything done.
$(DEPS_DONE):
	@mkdir -p build/deps
	$(Q)flock build/deps/.lock $(MAKE) --no-print-directory deps-locked

ifneq ($(wildcard $(DEPS_CACHED)/.complete),)
# Cache hit: copy the finished tree, point its musl-gcc at where it will
# live, and swap it in with two renames (compiles running meanwhile see the
# old tree or the new one). Nothing to do if another make, which held the
# lock before us, already did it.
deps-locked:
	$(Q)if [ ! -e $(DEPS_DONE) ]; then \
		echo "  DEPS    $(DEPS_ARCH): from cache $(DEPS_CACHED)" && \
		rm -rf $(DEPS_OUT).tmp $(DEPS_OUT).old && cp -a $(DEPS_CACHED) $(DEPS_OUT).tmp && \
		rm -f $(DEPS_OUT).tmp/.complete && \
		$(DEPS_ENV) deps/build relocate $(DEPS_OUT).tmp && \
		touch $(DEPS_OUT).tmp/.key-$(DEPS_KEY) && \
		{ [ ! -e $(DEPS_OUT) ] || mv $(DEPS_OUT) $(DEPS_OUT).old; } && \
		mv $(DEPS_OUT).tmp $(DEPS_OUT) && rm -rf $(DEPS_OUT).old; fi
else
# Cache miss: run the steps, then publish (copy, then rename: atomic).
deps-locked: $(patsubst %,$(DEPS_W)/%.stamp,$(DEPS_STEPS))
	$(Q)rm -f $(DEPS_OUT)/.key-*
	$(Q)if [ ! -e $(DEPS_CACHED)/.complete ]; then \
		t=$(DEPS_CACHED).tmp.$$$$ && rm -rf $$t && mkdir -p $$t && \
		cp -a $(DEPS_OUT)/. $$t/ && touch $$t/.complete && \
		{ mv -T $$t $(DEPS_CACHED) 2>/dev/null || rm -rf $$t; }; fi
	$(Q)touch $(DEPS_DONE)
	@echo "  DEPS    $(DEPS_ARCH): done, cached as $(DEPS_CACHED)"
endif

deps-rebuild:
	rm -rf $(DEPS_W) $(DEPS_OUT)
	$(MAKE) --no-print-directory deps

deps-fetch:
	$(Q)deps/fetch deps/deps.lock $(DEPS_DL)

# --- the steps ------------------------------------------------------------

# Each package's lines of deps.lock (files and "# version:") plus the hashes
# of its local patches (deps/patches/<pkg>/*.patch, applied after Debian's),
# rewritten only when they change: bumping or patching one package
# re-extracts and rebuilds only that package; editing comments, nothing.
$(DEPS_SRC)/%.lock: FORCE
	@mkdir -p $(@D)
	@{ awk -v p=$* '$$1 == p || ($$2 == "version:" && $$3 == p)' deps/deps.lock; \
	   if ls deps/patches/$*/*.patch >/dev/null 2>&1; then sha256sum deps/patches/$*/*.patch | sed "s/^/# patch /"; fi; \
	 } >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(DEPS_SRC)/%.stamp: $(DEPS_SRC)/%.lock
	$(Q)deps/fetch $< $(DEPS_DL)
	@echo "  EXTRACT $*"
	$(Q)$(DEPS_ENV) deps/build extract $*
	$(Q)touch $@

$(DEPS_HOSTW)/sqlite.stamp: $(DEPS_SRC)/sqlite3.stamp
	@echo "  AMALG   sqlite3.c"
	@mkdir -p $(@D)
	+$(Q)$(DEPS_ENV) deps/build sqlite-amalg
	$(Q)touch $@

# Rewritten only when the settings change, so it works as a prerequisite.
$(DEPS_W)/config: FORCE
	@mkdir -p $(@D)
	@echo '$(DEPS_CONFIG)' | cmp -s - $@ || echo '$(DEPS_CONFIG)' >$@
$(DEPS_W)/mbedtls.config: FORCE
	@mkdir -p $(@D)
	@echo '$(MBEDTLS_OPT)' | cmp -s - $@ || echo '$(MBEDTLS_OPT)' >$@

$(DEPS_W)/musl.stamp: $(DEPS_SRC)/musl.stamp $(DEPS_W)/config
$(DEPS_W)/mbedtls.stamp: $(DEPS_SRC)/mbedtls.stamp deps/mbedtls_config.h $(DEPS_W)/mbedtls.config
$(DEPS_W)/mhd.stamp: $(DEPS_SRC)/libmicrohttpd.stamp
$(DEPS_W)/sqlite.stamp: $(DEPS_HOSTW)/sqlite.stamp
$(DEPS_W)/yaml.stamp: $(DEPS_SRC)/libyaml.stamp
$(DEPS_W)/nghttp2.stamp: $(DEPS_SRC)/nghttp2.stamp
$(DEPS_W)/yyjson.stamp: $(DEPS_SRC)/yyjson.stamp
$(patsubst %,$(DEPS_W)/%.stamp,$(DEPS_STEPS)): $(DEPS_W)/musl.stamp $(DEPS_W)/config

$(DEPS_W)/%.stamp:
	@echo "  DEP     $* ($(DEPS_ARCH))"
	@mkdir -p $(@D)
	+$(Q)$(DEPS_ENV) deps/build $*
	$(Q)touch $@

# Developer aid: is every pinned file still in the mirror's pool? (Debian
# drops superseded revisions; the download cache keeps builds working.)
deps-refresh:
	$(Q)deps/fetch --probe deps/deps.lock $(DEPS_DL)

FORCE:
