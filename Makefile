# Makefile - the two commands of the README and a few helpers.
#   make all    install missing packages, build, start the local stack
#   make test   build with -Werror under ASan+UBSan, run unit + integration
# Other targets: deps build stop logs clean lint format
.POSIX:
SHELL = /bin/bash
BUILD ?= build
TEST_BUILD ?= build-test
MESON_TEST_ARGS ?=

.PHONY: all deps build test lint format stop logs clean

all: build
	BUILD=$(BUILD) ./deploy/local-stack.sh start

deps:
	@./deploy/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --buildtype=debugoptimized -Dwerror=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

# The last line of the run is "N passed, N failed" (tests/summary.py).
test: deps lint $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)
	-UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
	    meson test -C $(TEST_BUILD) --print-errorlogs $(MESON_TEST_ARGS)
	python3 tests/summary.py $(TEST_BUILD)/meson-logs/testlog.json

lint:
	./tests/check-banned.sh
	./tests/check-format.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

stop:
	./deploy/local-stack.sh stop

logs:
	./deploy/local-stack.sh logs

clean:
	-./deploy/local-stack.sh stop
	rm -rf $(BUILD) $(TEST_BUILD)
