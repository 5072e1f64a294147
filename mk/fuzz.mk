# SPDX-License-Identifier: MIT
#
# mk/fuzz.mk: fuzz targets, included by the top-level Makefile.
#
# Each tests/fuzz/<t>.c defines LLVMFuzzerTestOneInput() and gets:
#   $(B)/fuzz/<t>-replay   gcc/musl build with mk/fuzz-replay.c as main();
#                          `make fuzz-replay` runs it over
#                          tests/fuzz/corpus/<t>/ (under qemu for a foreign
#                          ARCH) and prints "fuzz replay: N passed, N failed"
#                          counting targets; `make test` runs this.
#   build/fuzz/<t>         libFuzzer build (clang, ASan+UBSan, glibc, the
#                          sanitizer twin's libraries), only when this
#                          machine's clang supports -fsanitize=fuzzer. Run:
#                          build/fuzz/<t> tests/fuzz/corpus/<t>
#   make fuzz FUZZ_SECONDS=N   also runs every libFuzzer target for N seconds
#                          (tests/fuzz/run: working corpus in
#                          build/fuzz-corpus/<t>, figures per target)
# Both link libwaygate.a, so a target may #include the .c it exercises.

FUZZ_NAMES  := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(B)/fuzz/%-replay)

$(B)/fuzz/%-replay: $(B)/obj/tests/fuzz/%.o $(B)/obj/mk/fuzz-replay.o $(LIBWG)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	$(Q)$(CC) $(WG_CFLAGS) $(WG_LDFLAGS) -o $@ $^ $(WG_LIBS)

fuzz-replay: $(FUZZ_REPLAY)
	$(Q)p=0; f=0; for t in $(FUZZ_NAMES); do \
		if $(RUN) $(B)/fuzz/$$t-replay tests/fuzz/corpus/$$t; then p=$$((p + 1)); \
		else echo "FAIL fuzz replay $$t"; f=$$((f + 1)); fi; \
	done; echo "fuzz replay: $$p passed, $$f failed"; [ $$f -eq 0 ]

# libFuzzer builds: a separate tree (build/fuzz) compiled by clang.
ifeq ($(FUZZER),1)
build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o $(LIBWG)
	@echo "  LINK    $@"
	$(Q)$(CC) $(WG_CFLAGS) -fsanitize=fuzzer $(WG_LDFLAGS) -o $@ $^ $(WG_LIBS)

fuzz-libfuzzer: $(FUZZ_NAMES:%=build/fuzz/%)
endif

FUZZ_CLANG_OK = $(shell echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' | \
	clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null && echo yes)

fuzz: $(FUZZ_REPLAY)
	$(Q)if [ -z "$(FUZZ_NAMES)" ]; then echo "fuzz: no tests/fuzz/*.c targets yet"; \
	elif [ "$(FUZZ_CLANG_OK)" = yes ]; then $(MAKE) FUZZER=1 fuzz-libfuzzer && \
		if [ -n "$(FUZZ_SECONDS)" ]; then FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run; fi; \
	else echo "fuzz: clang -fsanitize=fuzzer unavailable; built the replay mains only"; fi
