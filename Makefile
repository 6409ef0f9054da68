# SPDX-License-Identifier: Apache-2.0
# Everything a fresh machine (Rust toolchain, Python 3.11 with pip) needs: `make demo`, `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
FUZZ_SECONDS ?= 60
CARGO_TARGETS := -p pinscan-core -p pinscan-py

.PHONY: all build demo test test-rust lint test-python fuzz bench clean

all: build

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Runtime and test dependencies, read from pyproject.toml so there is one list.
$(DEPS_STAMP): pyproject.toml | $(PY)
	$(PY) -c 'import subprocess, sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "maturin>=1.9,<2", *p["dependencies"], *p["optional-dependencies"]["test"]])'
	touch $@

build: $(DEPS_STAMP)
	$(VENV)/bin/maturin develop --release --quiet
	@$(PY) -c 'import pinscan; print("pinscan", pinscan.__version__, "built into $(VENV)")'

demo: build
	$(PY) demo/run.py

test: test-rust lint test-python fuzz

test-rust:
	cargo fmt --all --check
	cargo clippy --locked $(CARGO_TARGETS) --all-targets -- -D warnings
	cargo test --locked -p pinscan-core

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check python tests benches demo
	$(VENV)/bin/ruff format --check python tests benches demo

test-python: build
	$(VENV)/bin/pytest

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	$(PY) benches/bench_certificates.py

clean:
	rm -rf $(VENV) target rust/pinscan-core/fuzz/target demo-out
