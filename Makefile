# callswitch: `make serve` runs the server, `make test` runs the suite.
# Both set up .venv themselves on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: what the server runs (speech for <Say>) and the real peers tests drive.
DEBIAN_PACKAGES := espeak-ng
DEBIAN_TEST_PACKAGES := $(DEBIAN_PACKAGES) sip-tester baresip openssl coturn chromium postgresql libnet-smpp-perl kamailio systemd rtpengine-daemon
# npm packages the browser tests load into Chromium, each directory pinned by its
# package-lock.json and installed again only when that changes (npm itself from
# Debian's package when no npm is on the PATH): the official Twilio Voice SDK, and
# the browser SIP phones JsSIP and SIP.js.
NPM_TEST_DIRS := tests/interop/npm tests/interop/browser_sip
NPM_INSTALLED := $(NPM_TEST_DIRS:%=%/node_modules/.installed)

.PHONY: serve test test-postgresql lint deps test-deps loadtest loadtest-smoke soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: $(INSTALLED) deps
	@echo "Starting callswitch. Call sip:echo@<address> (echo test) or sip:tone@<address>"
	@echo "(1 kHz tone, any key hangs up); the 'apps' log line names the exact URIs."
	$(BIN)/callswitch serve --demo $(ARGS)

deps:
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_PACKAGES)"

test-deps: $(NPM_INSTALLED)
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_TEST_PACKAGES)"

%/node_modules/.installed: %/package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory debian-packages PACKAGES=npm
	cd $* && npm ci --no-audit --no-fund --ignore-scripts --silent
	touch $@

debian-packages:
	@missing=""; for pkg in $(PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The interop modules whose servers write the store the most (calls and their
# webhooks, outbound calls, restarts and the outbox, recordings, SMS and billing) run
# a second time with every callswitch server on PostgreSQL; the store and REST API
# tests run on both backends in the first pass already, and `make test-postgresql`
# runs all of tests/interop on PostgreSQL.
PG_INTEROP := $(addprefix tests/interop/,test_voice_webhooks.py test_outbound_calls.py \
	test_lifecycle.py test_outbox_restart.py test_sms_billing.py \
	test_sms_sip.py test_recording.py)

# The unit tests (CPU-bound: parsers, hypothesis, the store on both backends) share
# two workers. The interop and security tests mostly wait on real peers and timers,
# so three workers share them, a module each (--dist loadfile: a module's shared
# server and peers stay on one worker; tests/ports.py gives each worker its own
# ports); the load-sensitive ones (marked solo: floods, hundreds of calls, the
# cluster) run after them, one at a time.
INTEROP_WORKERS := -n 3 --dist loadfile
test: $(INSTALLED) test-deps lint
	$(BIN)/pytest -q -n 2 --ignore=tests/interop --ignore=tests/security
	$(BIN)/pytest -q $(INTEROP_WORKERS) -m "not solo" tests/interop tests/security
	$(BIN)/pytest -q -m solo tests/interop tests/security
	CALLSWITCH_TEST_STORE=postgresql $(BIN)/pytest -q $(INTEROP_WORKERS) $(PG_INTEROP)

# All of tests/interop with every callswitch server on PostgreSQL.
test-postgresql: $(INSTALLED) test-deps
	CALLSWITCH_TEST_STORE=postgresql $(BIN)/pytest -q $(INTEROP_WORKERS) -m "not solo" tests/interop
	CALLSWITCH_TEST_STORE=postgresql $(BIN)/pytest -q -m solo tests/interop

# Every scenario at its target: loadtest/report/report.json and one PNG per scenario.
loadtest: $(INSTALLED) test-deps
	$(BIN)/python loadtest/suite.py $(ARGS)

loadtest-smoke: $(INSTALLED) test-deps
	$(BIN)/python loadtest/suite.py --smoke $(ARGS)

# Ten minutes at half the streams target; RSS, descriptors and event-loop lag sampled.
soak: $(INSTALLED) test-deps
	$(BIN)/python loadtest/soak.py $(ARGS)

clean:
	rm -rf $(VENV) callswitch-data .pytest_cache .ruff_cache .hypothesis
