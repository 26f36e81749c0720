# Two commands from nothing: `make demo` and `make test`. Each does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup demo test lint browser fonts deploy-tools lock stack-up stack-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	# chdb-core serves ClickHouse; --no-deps skips pandas/pyarrow/numpy, which serving does not need.
	$(BIN)/pip install --quiet --no-deps chdb-core==26.9.0
	rm -f $(VENV)/.installed-*
	touch $@

# Headless Chromium and a CJK font for the page tests (Debian packages; root on the dev and CI machines).
BROWSER_PKGS := chromium fonts-noto-cjk
browser:
	@dpkg -s $(BROWSER_PKGS) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	  else echo "install Debian's $(BROWSER_PKGS) (sudo apt-get install ...) for the browser tests"; exit 1; fi; }

# The CJK font the 奖状 PDFs embed (liveboard organiser certificates); the demo runs without it, so only a note.
fonts:
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; \
	  else echo "note: install Debian's fonts-noto-cjk for 奖状 certificates (sudo apt-get install fonts-noto-cjk)"; fi; }

# promtool for the Prometheus rule checks and unit tests (tests/deploy/test_manifests.py): Debian's prometheus
# package ships it. The Kubernetes schemas (kubernetes-validate) and yamllint come with the dev extras.
deploy-tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "note: install Debian's prometheus package (sudo apt-get install prometheus) for promtool; its checks are skipped"; fi; }

# The image's locked, hashed dependencies (deploy/requirements.lock) from pyproject.toml's pins.
lock: setup
	$(BIN)/pip install --quiet uv==0.13.8
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line -o deploy/requirements.lock.new
	{ sed -n '1,3p' deploy/requirements.lock; cat deploy/requirements.lock.new; } > deploy/requirements.lock.tmp
	mv deploy/requirements.lock.tmp deploy/requirements.lock && rm -f deploy/requirements.lock.new

demo: setup fonts
	$(BIN)/liveboard demo

test: setup browser deploy-tools
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stack-up: setup
	$(BIN)/liveboard stack up
	$(BIN)/liveboard db migrate
	$(BIN)/liveboard topics ensure

stack-down: setup
	$(BIN)/liveboard stack down

clean: stack-down
	rm -rf .liveboard
