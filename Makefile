# Makefile - the two commands of the README and a few helpers.
#   make all    install missing packages, build, start the local stack
#   make test   build with -Werror under ASan+UBSan, run unit + integration
# Other targets: deps build stop logs clean lint format bench fuzz
#   make fuzz          libFuzzer harnesses (clang), FUZZ_SECONDS each (tests/fuzz)
#   make compose       the Docker stack (docker-compose.yml), secrets in ./secrets
#   make compose-down  stop it (volumes kept)
.POSIX:
SHELL = /bin/bash
BUILD ?= build
TEST_BUILD ?= build-test
MESON_TEST_ARGS ?=

.PHONY: all deps build test lint format stop logs clean compose compose-down bench fuzz

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

# Benchmarks (bench/): small sizes by default, `make bench N=1000000` for
# full runs; figures are printed beside their reference, never pass/fail.
bench: build
	BUILD_DIR=$(CURDIR)/$(BUILD) ./bench/run-all.sh

# Fuzzing (tests/fuzz): each harness runs FUZZ_SECONDS under libFuzzer with
# ASan+UBSan, from its seed corpus (tests/fuzz/corpus/<target>, only read);
# new inputs go to $(FUZZ_BUILD)/corpus/<target>, crashes to
# $(FUZZ_BUILD)/artifacts/. `make test` replays the seed corpus.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json csv addr events smtp mime imap reports

$(FUZZ_BUILD)/build.ninja:
	@command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dwerror=true -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $$(for t in $(FUZZ_TARGETS); do printf ' tests/fuzz/fuzz_%s' $$t; done)
	@mkdir -p $(FUZZ_BUILD)/artifacts; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "fuzz: fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(FUZZ_BUILD)/tests/fuzz/fuzz_$$t \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t 2>$(FUZZ_BUILD)/fuzz_$$t.log \
	    || { tail -n 60 $(FUZZ_BUILD)/fuzz_$$t.log; echo "fuzz: fuzz_$$t failed;" \
	        "the input is in $(FUZZ_BUILD)/artifacts/"; exit 1; }; \
	    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' \
	        $(FUZZ_BUILD)/fuzz_$$t.log | tr '\n' ' '; echo; \
	done

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

# `docker compose` (v2 plugin) when it works, else `docker-compose` (v1)
COMPOSE_FIND = if docker compose version >/dev/null 2>&1; then dc="docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then dc=docker-compose; \
	else echo "compose: neither 'docker compose' nor 'docker-compose' is installed" >&2; exit 1; fi

# The stack's secrets are files (compose `secrets:`) in ./secrets: api_token,
# grafana_admin_password, postgres_password (the PostgreSQL superuser's),
# warmup_db_password and health_db_password (the services' roles), each made
# when missing with 48 random hex digits (api_token takes API_TOKEN from the
# environment, else from a .env of an earlier version, when there is one);
# then warmup_database_url and health_database_url, the services'
# DATABASE_URL_FILE, made when missing from their role's password. ./secrets
# is kept 0700 and its files 0644: compose bind-mounts them with their host
# mode, and the containers' users must read them (see docker-compose.yml).
compose:
	@$(COMPOSE_FIND); \
	(umask 077 && mkdir -p secrets && chmod 700 secrets) || exit 1; \
	for s in api_token grafana_admin_password postgres_password warmup_db_password health_db_password; do \
	    if [ ! -s secrets/$$s ]; then \
	        v=; \
	        if [ $$s = api_token ]; then \
	            v=$${API_TOKEN:-$$(sed -n 's/^API_TOKEN=//p' .env 2>/dev/null | tail -1)}; \
	        fi; \
	        [ -n "$$v" ] || v=$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'); \
	        (umask 077 && printf '%s' "$$v" >secrets/$$s.new && mv -f secrets/$$s.new secrets/$$s) || exit 1; \
	        echo "compose: wrote secrets/$$s"; \
	    fi; \
	    chmod 644 secrets/$$s || exit 1; \
	done; \
	for s in warmup health; do \
	    f=secrets/$${s}_database_url; \
	    if [ ! -s $$f ]; then \
	        (umask 077 && printf 'postgres://%s:%s@postgres:5432/%s?sslmode=disable' $$s \
	            "$$(cat secrets/$${s}_db_password)" $$s >$$f.new && mv -f $$f.new $$f) || exit 1; \
	        echo "compose: wrote $$f"; \
	    fi; \
	    chmod 644 $$f || exit 1; \
	done; \
	echo "$$dc up -d --build"; $$dc up -d --build

compose-down:
	@$(COMPOSE_FIND); echo "$$dc down"; $$dc down
