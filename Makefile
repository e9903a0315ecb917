# Two commands on a fresh machine: `make demo` and `make test` (both run `make setup` first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-done
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-slow test-fast lint clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-offline-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[offline,finetune,test,ray]'
	$(PIP) install -q --no-deps -r requirements-offline-nodeps.txt
	$(VENV)/bin/w2s setup-models
	touch $(STAMP)

demo: setup
	$(VENV)/bin/w2s demo

test: setup browser
	$(PY) -m pytest -q

# Headless Chromium for the HTML report's browser test: installed when missing and running as root
# (Debian's `chromium`); elsewhere the test skips, except under W2S_REQUIRE_BROWSER=1 (CI).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	      echo "note: could not install chromium; the browser test will skip (or fail in CI)"; \
	  else echo "note: chromium is not installed (not root); the browser test will skip"; fi

test-slow: setup
	$(PY) -m pytest -q -m slow

test-fast: setup
	$(PY) -m pytest -q -m "not integration and not slow"

lint: setup
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
