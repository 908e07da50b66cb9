# `make run` needs only python3 (3.11 or newer, with venv) and make; `make test` also needs
# Chromium and npm (README.md, top). The virtualenv is built on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint clean distclean

# run: the whole service in the foreground (make run RUN_ARGS="--port 8000")
run: $(INSTALLED)
	$(BIN)/callflow run $(RUN_ARGS)

# test: the test suite (make test PYTEST_ARGS="-x -k register"). It stops at once if a tool the
# suite needs is missing; SKIP_BROWSER=1 or SKIP_TWILIO_MOCK=1 skips the tests that need it instead.
test: $(INSTALLED)
	@missing=0; \
	if [ -z "$(SKIP_BROWSER)" ] && [ ! -x $(CHROMIUM) ]; then missing=1; \
		echo "error: $(CHROMIUM) is missing; the browser tests need Debian's Chromium:" >&2; \
		echo "         sudo apt-get install chromium" >&2; \
		echo "       or skip those tests: make test SKIP_BROWSER=1" >&2; fi; \
	if [ -z "$(SKIP_TWILIO_MOCK)" ] && ! command -v npm >/dev/null; then missing=1; \
		echo "error: npm is missing; the Twilio API mock (Prism and Twilio's OpenAPI spec, fetched" \
			"into .tools/ on first use) needs Node.js and npm:" >&2; \
		echo "         sudo apt-get install nodejs npm" >&2; \
		echo "       or skip those tests: make test SKIP_TWILIO_MOCK=1" >&2; fi; \
	exit $$missing
	SKIP_BROWSER=$(SKIP_BROWSER) SKIP_TWILIO_MOCK=$(SKIP_TWILIO_MOCK) $(BIN)/pytest $(PYTEST_ARGS)

# lint: ruff, with the project's rules, and the layers' import contract (pyproject.toml)
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Reinstall only when the dependencies or the top-level packages may have changed (an editable
# install lists the packages it maps); the stamp lives in the venv it describes.
$(INSTALLED): pyproject.toml $(wildcard */__init__.py) | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $@

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no python3; callflow needs Python 3.11+" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); callflow needs Python 3.11+" \
			"(make PYTHON=/path/to/python3.11 ...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "error: could not create $(VENV);" \
		"on Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }

# clean: caches and build leftovers (keeps .venv, .tools and the data in var/)
clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist
	find . -path ./$(VENV) -prune -o -path ./.tools -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf

# distclean: clean, and the virtualenv and the npm tools too (still keeps var/)
distclean: clean
	rm -rf $(VENV) .tools
