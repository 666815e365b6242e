# chatkeep: `make run` serves the API on 127.0.0.1:8000 with SQLite; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TSC := .tools/node_modules/.bin/tsc

.PHONY: run test lint format bench bench-browser chromium clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chatkeep needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/chatkeep migrate
	$(BIN)/chatkeep serve

test: $(STAMP) chromium
	$(BIN)/pytest

# The browser tests drive Debian's Chromium (never a downloaded browser). Installed when missing and
# apt-get can be used; otherwise they skip with the reason (and fail under CHATKEEP_REQUIRE_SERVICES=1).
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
		($$SUDO apt-get install -y --no-install-recommends chromium || \
		 ($$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends chromium)) \
		|| echo "chromium could not be installed: the browser tests will skip"; \
	fi

# TypeScript checks the browser client's JSDoc types (tsc --checkJs); it comes from the npm registry.
# It checks the client's parts (static/client/*.js) one module at a time, and their ChatkeepClient
# against chatkeep.d.ts, which "../chatkeep.js" names for it (the joined module exists only as served).
$(TSC):
	npm install --silent --no-save --prefix .tools typescript@5


lint: $(STAMP) $(TSC)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(TSC) -p tsconfig.json

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-browser: $(STAMP) chromium
	$(BIN)/python bench/browser.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis
