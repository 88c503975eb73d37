# A thin front for meson. `make test` on a fresh Debian 12 machine installs what is
# missing (as root), configures, builds and runs every suite.
BUILD    ?= build
REACTOR  ?= auto
PORTABLE ?= false
PREFIX   ?= /usr/local
JOBS     ?= 2
MESON_OPTS ?=

# REACTOR=poll (or PORTABLE=true) gets a build directory of its own.
ifneq ($(REACTOR),auto)
BUILD := $(BUILD)-$(REACTOR)
endif
ifeq ($(PORTABLE),true)
BUILD := $(BUILD)-portable
endif

.PHONY: all deps configure check test examples docs asan tsan fuzz bench bench-instr stress port-check install clean

all: configure
	meson compile -C $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	@scripts/install-deps.sh
	meson setup $(BUILD) -Dreactor=$(REACTOR) -Dportable_paths=$(PORTABLE) $(MESON_OPTS)

configure: $(BUILD)/build.ninja

# The suites only; `test` adds the install-and-link check of a consumer program.
check: all
	meson test -C $(BUILD) --num-processes $(JOBS) --print-errorlogs $(TEST_OPTS)

test: check
	scripts/consumer-test.sh $(BUILD)

# The seed tour (examples/tour, one program per section of the asyncio tutorials): build,
# run each, print its output, check it against tests/examples/tour/*.expected.
examples: configure
	meson compile -C $(BUILD) -j $(JOBS) tour
	tests/examples/tour_test.sh --show tests/examples/tour $(BUILD)/examples/tour

# The API reference (Doxygen, docs/Doxyfile) from the public headers into build-docs/html/;
# any Doxygen warning fails it.
docs:
	@scripts/install-deps.sh --docs
	@mkdir -p build-docs
	doxygen docs/Doxyfile || { cat build-docs/warnings.log; exit 1; }
	@[ ! -s build-docs/warnings.log ] || { cat build-docs/warnings.log; exit 1; }
	@echo "docs: build-docs/html/index.html (no warnings)"

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer
# included), and under ThreadSanitizer. Fiber switches are annotated in fiber/context.cpp.
SANITIZE_OPTS = -Db_lundef=false -Dbenchmarks=false -Dbuildtype=debugoptimized
# Use-after-return detection is on: it is what needs distinct fake-stack slots per fiber.
asan: export ASAN_OPTIONS = detect_stack_use_after_return=1:detect_leaks=1:halt_on_error=1:abort_on_error=1:print_summary=1
asan: export UBSAN_OPTIONS = halt_on_error=1:print_stacktrace=1:print_summary=1
asan:
	@$(MAKE) --no-print-directory check BUILD=build-asan TEST_OPTS="--timeout-multiplier 4" \
	  MESON_OPTS="-Db_sanitize=address,undefined $(SANITIZE_OPTS)"
tsan: export TSAN_OPTIONS = halt_on_error=1:second_deadlock_stack=1:print_summary=1
tsan:
	@$(MAKE) --no-print-directory check BUILD=build-tsan TEST_OPTS="--timeout-multiplier 6" \
	  MESON_OPTS="-Db_sanitize=thread $(SANITIZE_OPTS)"

# libFuzzer targets (tests/fuzz), built with clang 16 under ASan+UBSan, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: export ASAN_OPTIONS = detect_leaks=1:abort_on_error=1
fuzz:
	@scripts/install-deps.sh --fuzz
	@[ -f build-fuzz/build.ninja ] || CC=clang-16 CXX=clang++-16 meson setup build-fuzz \
	  -Dfuzzing=true -Dtests=false -Dbenchmarks=false -Db_sanitize=address,undefined -Db_lundef=false
	meson compile -C build-fuzz -j $(JOBS)
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# make bench: a release tree of its own (build-bench unless BUILD= names another), the
# peers, interleaved runs and one table; QUICK=1 for a short run, TLS_ONLY=1 for the TLS
# rows alone (issue 16). See scripts/bench.sh.
BENCH_BUILD ?= $(if $(filter build,$(BUILD)),build-bench,$(BUILD))
bench:
	@scripts/install-deps.sh --bench || echo "bench: peers missing; their benchmarks are skipped"
	@[ -f $(BENCH_BUILD)/build.ninja ] || meson setup $(BENCH_BUILD) -Dbuildtype=release -Dtests=false $(MESON_OPTS)
	meson setup --reconfigure $(BENCH_BUILD) >/dev/null  # picks up peers installed just now
	meson compile -C $(BENCH_BUILD) -j $(JOBS)
	QUICK=$(QUICK) TLS_ONLY=$(TLS_ONLY) JOBS=$(JOBS) scripts/bench.sh $(BENCH_BUILD)

# make bench-instr: instructions per operation (callgrind over each benchmark's timed loop)
# and syscalls per operation (strace -f) for weft's primitives and the C++ peers' same
# workloads, in the same release tree as `make bench`; prints one table and writes it with
# each weft row's hot functions to bench/results/<stamp>/instr.{md,json} and instr_hot.txt.
# About 1.5 minutes on the 2-core VM. See scripts/bench_instr.py.
bench-instr:
	@scripts/install-deps.sh --instr || { echo "bench-instr: needs valgrind and strace"; exit 1; }
	@[ -f $(BENCH_BUILD)/build.ninja ] || meson setup $(BENCH_BUILD) -Dbuildtype=release -Dtests=false $(MESON_OPTS)
	meson setup --reconfigure $(BENCH_BUILD) >/dev/null  # picks up peers installed just now
	meson compile -C $(BENCH_BUILD) -j $(JOBS)
	python3 scripts/bench_instr.py $(BENCH_BUILD)

# Compile every source for macOS (x86_64, arm64) with zig's clang, and run meson's configure
# step for both against a Homebrew-like prefix (scripts/port-configure.sh); needs npm.
port-check:
	scripts/port-check.sh

# Scale runs (1M fibers, 10k connections, 10M cross-thread callbacks): a few minutes.
stress: configure
	meson compile -C $(BUILD) -j $(JOBS) stress_tests
	$(BUILD)/tests/stress_tests

install: configure
	meson configure $(BUILD) -Dprefix=$(abspath $(PREFIX))
	meson compile -C $(BUILD) -j $(JOBS)
	meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf build build-*
