# `make test` and `make search` do all setup on a fresh machine: a venv, torch, the package
# (editable, with dev extras) and, for the default dataset, Fashion-MNIST.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= /usr/share/datasets/fashion-mnist
SEARCH_ARGS ?= --target-flops 400M
PYTEST_ARGS ?=
# The torch step. Which build (CPU or CUDA) pip gets is decided by the package index, not the
# version: TORCH_INDEX empty uses pip's own configuration; set it to your index of CPU or CUDA
# wheels to choose, e.g. make venv TORCH_INDEX=<the CPU wheel index URL> (after make clean).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# `make search` needs Fashion-MNIST only for the default dataset: not with --dataset other than
# fashion-mnist (folder:PATH, cifar10, synthetic), nor with your own copy (--data-dir).
SEARCH_DATA := $(if $(findstring --data-dir,$(SEARCH_ARGS)),,$(if $(findstring --dataset,$(SEARCH_ARGS)),$(if $(findstring fashion-mnist,$(SEARCH_ARGS)),data,),data))

.PHONY: test search venv data clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: its build is a matter of the index, not of pyproject's range
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH_SPEC)'
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

data:
	@if [ -f $(DATA_DIR)/train-images-idx3-ubyte.gz ]; then \
		echo "Fashion-MNIST present in $(DATA_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) && \
		echo "installed Debian package dataset-fashion-mnist into $(DATA_DIR)"; \
	else \
		echo "Fashion-MNIST is missing from $(DATA_DIR). Install it with" >&2; \
		echo "  sudo apt-get install dataset-fashion-mnist" >&2; \
		echo "or download the four IDX .gz files and run: nas search --data-dir DIR ..." >&2; \
		exit 1; \
	fi

# Headless Chromium for the dashboard tests (Debian's package). Never fails: without it the
# browser tests skip and say why.
.PHONY: browser
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "chromium present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }; } && \
		echo "installed Debian package chromium" || \
		echo "could not install chromium: the browser tests will skip" >&2; \
	else \
		echo "chromium is missing (install it with: sudo apt-get install chromium);" \
		     "the browser tests will skip" >&2; \
	fi

# A real PostgreSQL server for the many-drivers tests (Debian's package gives initdb/pg_ctl; the
# tests start their own server in /tmp on a free loopback port). Never fails: without it those
# tests skip and say why.
.PHONY: postgres
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "postgresql present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq postgresql >/dev/null 2>&1 || \
		  { apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null; }; } && \
		echo "installed Debian package postgresql" || \
		echo "could not install postgresql: the PostgreSQL tests will skip" >&2; \
	else \
		echo "postgresql is missing (install it with: sudo apt-get install postgresql);" \
		     "the PostgreSQL tests will skip" >&2; \
	fi

test: venv data browser postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

search: venv $(SEARCH_DATA)
	$(BIN)/nas search $(SEARCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
