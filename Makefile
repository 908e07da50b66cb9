# Everything needs only python3 (3.11 or newer) and make; the virtualenv is built on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint clean distclean

# run: the whole service in the foreground (make run RUN_ARGS="--port 8000")
run: $(INSTALLED)
	$(BIN)/callflow run $(RUN_ARGS)

# test: the test suite (make test PYTEST_ARGS="-x -k register")
test: $(INSTALLED)
	@test -x $(CHROMIUM) || echo "note: $(CHROMIUM) is missing, so the browser tests cannot run" \
		"(they skip, or fail under CI=true); install Debian's chromium: sudo apt-get install chromium"
	@command -v npm >/dev/null || echo "note: npm is missing; the tests that use the Twilio API" \
		"mock need Node.js and npm to install Stoplight Prism (sudo apt-get install nodejs npm)."
	$(BIN)/pytest $(PYTEST_ARGS)

# lint: ruff, with the project's rules
lint: $(INSTALLED)
	$(BIN)/ruff check .

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
