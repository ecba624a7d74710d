# callswitch: `make serve` runs the server, `make test` runs the suite.
# Both set up .venv themselves on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: what the server runs (speech for <Say>) and the real peers tests drive.
DEBIAN_PACKAGES := espeak-ng
DEBIAN_TEST_PACKAGES := $(DEBIAN_PACKAGES) sip-tester baresip openssl chromium

.PHONY: serve test lint deps test-deps loadtest clean

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

test-deps:
	@$(MAKE) --no-print-directory debian-packages PACKAGES="$(DEBIAN_TEST_PACKAGES)"

debian-packages:
	@missing=""; for pkg in $(PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

lint: $(INSTALLED)
	$(BIN)/ruff check .

test: $(INSTALLED) test-deps lint
	$(BIN)/pytest -q

loadtest: $(INSTALLED) test-deps
	$(BIN)/python loadtest/sip_cps.py
	$(BIN)/python loadtest/webhook_calls.py
	$(BIN)/python loadtest/bridge.py
	$(BIN)/python loadtest/streams.py

clean:
	rm -rf $(VENV) callswitch-data .pytest_cache .ruff_cache .hypothesis
