# trackrig - hardware-in-the-loop test rig for GPS/telematics trackers.
#
#   make demo     install what is missing, build, run the main job on a simulated rack
#   make test     install what is missing, build with ASan+UBSan, run the Criterion suite
#   make bench    benchmarks (figures as ratios against a baseline measured in the same run)
#   make all      build/rig and build/simrack
#   make install PREFIX=/usr/local
#   make deps     apt-get what the build, tests and demo need (skips what is already there)

VERSION := 0.1.0
PREFIX  ?= /usr/local
BUILD   ?= build

CC      ?= cc
CFLAGS  ?= -O2 -g
STD     := -std=gnu11 -Wall -Wextra -Werror -MMD -MP
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# Libraries, always through pkg-config. Recursive (=) so that they are read
# when a recipe runs, after `deps` has installed them.
PKGS      := libserialport sqlite3 yaml-0.1 libmodbus libusb-1.0 libgps libmicrohttpd libcrypto
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lm
TEST_CFLAGS = $(shell pkg-config --cflags criterion)
TEST_LIBS   = $(shell pkg-config --libs criterion)

CPPFLAGS += -DTRACKRIG_VERSION=\"$(VERSION)\" -D_GNU_SOURCE

# Include paths are the walls between rooms: drivers/ and fixtures/ cannot
# even see rig/'s headers.
INC = -Idrivers -Irig -Ireports
$(BUILD)/obj/drivers/%.o $(BUILD)/san/obj/drivers/%.o: INC = -Idrivers
$(BUILD)/obj/fixtures/%.o $(BUILD)/san/obj/fixtures/%.o: INC = -Idrivers
$(BUILD)/obj/reports/%.o $(BUILD)/san/obj/reports/%.o: INC = -Irig -Ireports
$(BUILD)/san/obj/tests/%.o: INC = -Idrivers -Irig -Ireports -Itests

DRV_SRC   := $(wildcard drivers/*.c)
# rig/'s core reads as a library; the commands (and main.c's table of them) live in rig/cmd/.
RIG_SRC   := $(filter-out rig/cmd/main.c,$(wildcard rig/*.c rig/cmd/*.c)) $(wildcard reports/*.c)
SIM_SRC   := $(wildcard fixtures/simrack/*.c)
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOLS     := $(patsubst tests/tools/%.c,$(BUILD)/san/%,$(TOOL_SRC))

obj     = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
sanobj  = $(patsubst %.c,$(BUILD)/san/obj/%.o,$(1))

# test-run runs test-tsan after the whole suite (not after a filtered run).
.PHONY: all demo test test-run bench bench-run deps install clean check-walls
.DEFAULT_GOAL := all
# Keep tool objects: make would otherwise delete them as intermediates.
.SECONDARY:

all: $(BUILD)/rig $(BUILD)/simrack

# ---- release build -------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(CFLAGS) $(CPPFLAGS) $(INC) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/rig: $(call obj,rig/cmd/main.c $(RIG_SRC) $(DRV_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(PKG_LIBS)

$(BUILD)/simrack: $(call obj,$(SIM_SRC) $(DRV_SRC))
	$(CC) $(CFLAGS) $^ -o $@ $(PKG_LIBS)

# ---- sanitizer build for the tests ---------------------------------------
$(BUILD)/san/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -O1 -g $(SAN) $(CPPFLAGS) $(INC) $(PKG_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/san/rig: $(call sanobj,rig/cmd/main.c $(RIG_SRC) $(DRV_SRC))
	$(CC) $(SAN) $^ -o $@ $(PKG_LIBS)

$(BUILD)/san/simrack: $(call sanobj,$(SIM_SRC) $(DRV_SRC))
	$(CC) $(SAN) $^ -o $@ $(PKG_LIBS)

$(BUILD)/san/trackrig-tests: $(call sanobj,$(TEST_SRC) $(RIG_SRC) $(DRV_SRC))
	$(CC) $(SAN) $^ -o $@ $(PKG_LIBS) $(TEST_LIBS)

# Small programs tests run in a child process (tests/tools).
$(BUILD)/san/%: $(BUILD)/san/obj/tests/tools/%.o $(call sanobj,$(DRV_SRC))
	$(CC) $(SAN) $^ -o $@ $(PKG_LIBS)

# The USB testbed: libumockdev's testbed must live in the process that runs
# libusb, so this test program links the rig's code and umockdev (glib).
UMOCKDEV_CFLAGS = $(shell pkg-config --cflags umockdev-1.0)
UMOCKDEV_LIBS   = $(shell pkg-config --libs umockdev-1.0) -lpthread

$(BUILD)/san/obj/tests/usb/%.o: tests/usb/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -O1 -g $(SAN) $(CPPFLAGS) -Idrivers $(PKG_CFLAGS) $(UMOCKDEV_CFLAGS) -c $< -o $@

$(BUILD)/san/usb_testbed: $(BUILD)/san/obj/tests/usb/usb_testbed.o $(call sanobj,$(RIG_SRC) $(DRV_SRC))
	$(CC) $(SAN) $^ -o $@ $(PKG_LIBS) $(UMOCKDEV_LIBS)

# Firmware fixture images (docs/firmware.md): a test vendor key and one
# image per way an update can go wrong, made by tests/tools/fwgen.c.
FW_FIXTURE_NAMES := good-2.0.0 crash-loop no-gnss no-modem corrupt-payload bad-signature wrong-model truncated unsigned
# The set is built for the reference's model (Teltonika FMB920) in fw/ and
# again in fw/MODEL/ for each model simrack's Acme units present as, so a
# rack of mixed models (rig qualify) updates each with its own build.
FW_MODELS := 100 200 300 400 500 600 700 800 900 A00
FW_FIXTURES := $(patsubst %,$(BUILD)/fixtures/fw/%.fw,$(FW_FIXTURE_NAMES)) \
	$(foreach m,$(FW_MODELS),$(patsubst %,$(BUILD)/fixtures/fw/AT-$(m)/%.fw,$(FW_FIXTURE_NAMES)))
$(FW_FIXTURES) $(BUILD)/fixtures/fw/vendor.pub.pem &: $(BUILD)/san/fwgen
	$(BUILD)/san/fwgen $(BUILD)/fixtures/fw $(patsubst %,Acme:AT-%,$(FW_MODELS))
.PHONY: fw-fixtures
fw-fixtures: $(FW_FIXTURES)

# The LD_PRELOAD shim that lets libserialport open a pty (see tests/shim).
# Built without sanitizers: it is preloaded into other programs.
$(BUILD)/ptyshim.so: tests/shim/ptyshim.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -O2 -fPIC -shared $< -o $@ -ldl

test: deps
	@$(MAKE) --no-print-directory test-run

test-run: check-walls $(BUILD)/san/rig $(BUILD)/san/simrack $(BUILD)/san/trackrig-tests $(BUILD)/ptyshim.so $(TOOLS) $(BUILD)/san/usb_testbed fw-fixtures
	TRACKRIG_BIN=$(BUILD)/san TRACKRIG_SHIM=$(BUILD)/ptyshim.so TRACKRIG_IMAGES=$(BUILD)/fixtures/fw \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/run-suite $(BUILD)/san/trackrig-tests $(TESTFLAGS)
	@if [ -z '$(TESTFLAGS)' ]; then $(MAKE) --no-print-directory test-tsan; fi

# ---- ThreadSanitizer build for the threaded suites -------------------------
# The threads live in rig (a thread per slot on one virtual clock, the
# ingest's server, gpsd's watcher, the stop thread) and are started by the
# suites below through build/tsan/rig and build/tsan/simrack (ASan and TSan
# cannot share a binary). The Criterion binary stays the ASan one: its
# BoxFort arena cannot be mapped under TSan ("Could not initialize
# inheritable arena"). Every TSan report goes to build/tsan/reports/ and
# fails the target, whatever the test made of the exit code; halt_on_error
# makes the racing process exit 66 at its first race, which fails its test
# too. test-run runs it after the whole suite, so CI does.
TSAN        := -fsanitize=thread -fno-omit-frame-pointer
TSAN_SUITES ?= @(run|simrack_clock|rollout|ingest|gnss|determinism)/*
TSAN_TOOLS  := fwgen serial_peer usb_testbed
tsanobj     = $(patsubst %.c,$(BUILD)/tsan/obj/%.o,$(1))
$(BUILD)/tsan/obj/drivers/%.o $(BUILD)/tsan/obj/fixtures/%.o: INC = -Idrivers
$(BUILD)/tsan/obj/reports/%.o: INC = -Irig -Ireports

$(BUILD)/tsan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -O1 -g $(TSAN) $(CPPFLAGS) $(INC) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/tsan/rig: $(call tsanobj,rig/cmd/main.c $(RIG_SRC) $(DRV_SRC))
	$(CC) $(TSAN) $^ -o $@ $(PKG_LIBS)

$(BUILD)/tsan/simrack: $(call tsanobj,$(SIM_SRC) $(DRV_SRC))
	$(CC) $(TSAN) $^ -o $@ $(PKG_LIBS)

.PHONY: test-tsan
test-tsan: $(BUILD)/tsan/rig $(BUILD)/tsan/simrack $(BUILD)/san/trackrig-tests $(BUILD)/ptyshim.so $(TOOLS) $(BUILD)/san/usb_testbed fw-fixtures
	@for t in $(TSAN_TOOLS); do ln -sf ../san/$$t $(BUILD)/tsan/$$t; done
	@rm -rf $(BUILD)/tsan/reports && mkdir -p $(BUILD)/tsan/reports
	TRACKRIG_BIN=$(BUILD)/tsan TRACKRIG_SHIM=$(BUILD)/ptyshim.so TRACKRIG_IMAGES=$(BUILD)/fixtures/fw \
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 log_path=$(CURDIR)/$(BUILD)/tsan/reports/race suppressions=$(CURDIR)/tests/tsan.supp" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	TRACKRIG_TEST_LOG=$(BUILD)/tsan/test.log \
	  tests/run-suite $(BUILD)/san/trackrig-tests --filter='$(TSAN_SUITES)' $(TSANFLAGS); st=$$?; \
	 if ls $(BUILD)/tsan/reports/race.* >/dev/null 2>&1; then \
	   cat $(BUILD)/tsan/reports/race.*; echo "test-tsan: ThreadSanitizer reports above ($(BUILD)/tsan/reports/)" >&2; exit 1; fi; \
	 exit $$st

# ---- benchmarks (release build) ------------------------------------------
$(BUILD)/bench/%: tests/bench/%.c $(call obj,$(RIG_SRC) $(DRV_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(CFLAGS) $(CPPFLAGS) -Idrivers -Irig -Ireports $(PKG_CFLAGS) $(filter %.c %.o,$^) -o $@ $(PKG_LIBS)

BENCHES := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

bench: deps
	@$(MAKE) --no-print-directory bench-run

bench-run: all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; TRACKRIG_BIN=$(BUILD) $$b || exit 1; done

# ---- the main job on the simulated rack ----------------------------------
demo: deps
	@$(MAKE) --no-print-directory all
	@$(BUILD)/rig demo

# ---- the walls between rooms (DEVELOPERS.md) -----------------------------
check-walls:
	@bad=$$(grep -lE '#include +"(\.\./)*rig/' drivers/*.[ch] fixtures/simrack/*.[ch] 2>/dev/null; \
	       grep -lE '#include +"(\.\./)*drivers/' reports/*.[ch] 2>/dev/null; \
	       grep -lE '#include +"(\.\./)*fixtures/' rig/*.[ch] rig/cmd/*.c drivers/*.[ch] 2>/dev/null); \
	 if [ -n "$$bad" ]; then echo "wall breached (see README.md, 'The house'): $$bad"; exit 1; fi
	@# SQL lives behind the store's own functions (rig/store*.c) and in reports/.
	@sql=$$(for f in rig/*.c rig/cmd/*.c; do case $$f in rig/store*.c) ;; *) grep -lE 'sqlite3_(prepare|exec|step)' $$f;; esac; done); \
	 if [ -n "$$sql" ]; then echo "SQL outside the store (keep it in rig/store*.c, see docs/results-store.md):" $$sql; exit 1; fi

# ---- fuzzing (libFuzzer; tests/fuzz/README.md) ----------------------------
# make fuzz       build every target in tests/fuzz/ with clang (ASan+UBSan+libFuzzer)
# make fuzz-run   run each on its seed corpus (tests/fuzz/corpus/NAME) for
#                 FUZZ_SECONDS; new inputs go to build/fuzz/work, not the tree
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_BINS    := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
# What the targets reach: the drivers (codec, firmware images, tracker
# command sets) and the rig's loaders and framing (the scenario loader checks
# reason codes against diagnose.c and guesses through cli.c's cli_suggest;
# diagnose.c writes its times through timefmt.c).
FUZZ_LIBSRC  := $(DRV_SRC) rig/rack.c rig/scenario.c rig/yamldoc.c rig/duration.c rig/ingest_frame.c \
		rig/cli.c rig/diagnose.c rig/dispatch.c rig/timefmt.c
fuzzobj       = $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(1))

.PHONY: fuzz fuzz-run
fuzz: $(FUZZ_BINS)

$(BUILD)/fuzz/obj/drivers/%.o: FUZZ_INC = -Idrivers
$(BUILD)/fuzz/obj/%.o: FUZZ_INC ?= -Idrivers -Irig
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(STD) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(CPPFLAGS) $(FUZZ_INC) $(PKG_CFLAGS) -c $< -o $@

$(FUZZ_BINS): $(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/tests/fuzz/%.o $(call fuzzobj,$(FUZZ_LIBSRC))
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(PKG_LIBS)

fuzz-run: fuzz
	@for n in $(FUZZ_NAMES); do \
	   mkdir -p $(BUILD)/fuzz/work/$$n $(BUILD)/fuzz/artifacts/$$n; \
	   echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
	   $(BUILD)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	     -artifact_prefix=$(BUILD)/fuzz/artifacts/$$n/ $(BUILD)/fuzz/work/$$n tests/fuzz/corpus/$$n \
	     2>$(BUILD)/fuzz/$$n.log || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	   grep -E "stat::number_of_executed_units|Done " $(BUILD)/fuzz/$$n.log | tail -2; \
	 done

# ---- install, clean --------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/trackrig/scenarios
	install -m 755 $(BUILD)/rig $(BUILD)/simrack $(DESTDIR)$(PREFIX)/bin/
	install -m 644 scenarios/*.yaml $(DESTDIR)$(PREFIX)/share/trackrig/scenarios/ 2>/dev/null || true

clean:
	rm -rf $(BUILD)

# ---- dependencies ----------------------------------------------------------
# Each entry: how to tell it is there (pkg-config module or command) and the
# Debian package that brings it.
DEPS := pc:libserialport:libserialport-dev pc:sqlite3:libsqlite3-dev \
	pc:yaml-0.1:libyaml-dev pc:criterion:libcriterion-dev pc:libmodbus:libmodbus-dev \
	pc:libusb-1.0:libusb-1.0-0-dev pc:umockdev-1.0:libumockdev-dev cmd:umockdev-run:umockdev \
	pc:libgps:libgps-dev cmd:gpsd:gpsd cmd:gpsfake:gpsd-clients pc:libmicrohttpd:libmicrohttpd-dev \
	pc:libcrypto:libssl-dev cmd:gnuplot:gnuplot-nox cmd:chromium:chromium \
	cmd:socat:socat cmd:mbpoll:mbpoll cmd:gcc:gcc cmd:make:make \
	cmd:clang:clang fuzz:libfuzzer:libclang-rt-14-dev

deps:
	@command -v pkg-config >/dev/null || { apt-get update -qq && apt-get install -y -qq pkg-config; }
	@missing=""; for d in $(DEPS); do \
	   kind=$${d%%:*}; rest=$${d#*:}; what=$${rest%%:*}; pkg=$${rest#*:}; \
	   case $$kind in \
	     pc)  pkg-config --exists $$what || missing="$$missing $$pkg";; \
	     cmd) command -v $$what >/dev/null || [ -x /usr/sbin/$$what ] || missing="$$missing $$pkg";; \
	     fuzz) echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return d && n; }' | \
	           $(FUZZ_CC) -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null || missing="$$missing $$pkg";; \
	   esac; \
	 done; \
	 if [ -n "$$missing" ]; then \
	   echo "deps: installing$$missing"; \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	 else echo "deps: all present"; fi

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
