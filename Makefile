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

.PHONY: all deps configure test bench stress port-check install clean

all: configure
	meson compile -C $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	@scripts/install-deps.sh
	meson setup $(BUILD) -Dreactor=$(REACTOR) -Dportable_paths=$(PORTABLE) $(MESON_OPTS)

configure: $(BUILD)/build.ninja

test: all
	meson test -C $(BUILD) --num-processes $(JOBS) --print-errorlogs
	scripts/consumer-test.sh $(BUILD)

bench: configure
	@scripts/install-deps.sh --bench || echo "bench: peers missing; their benchmarks are skipped"
	meson setup --reconfigure $(BUILD) >/dev/null  # picks up peers installed just now
	meson compile -C $(BUILD) -j $(JOBS)
	scripts/bench.sh $(BUILD)

# Compile every source for macOS (x86_64, arm64) with zig's clang; needs npm.
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
