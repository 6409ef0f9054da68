# SPDX-License-Identifier: Apache-2.0
# Everything a fresh machine (Rust toolchain, Python 3.11 with pip) needs: `make demo`, `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
FUZZ_SECONDS ?= 60
CARGO_TARGETS := -p pinscan-core -p pinscan-py

.PHONY: all build demo test test-rust lint test-python fuzz bench system-deps clean

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

demo: build system-deps
	$(PY) demo/run.py

test: test-rust lint fuzz test-python

FUZZ_MANIFEST := --manifest-path rust/pinscan-core/fuzz/Cargo.toml

test-rust:
	cargo fmt --all --check
	cargo fmt $(FUZZ_MANIFEST) --check
	cargo clippy --locked $(CARGO_TARGETS) --all-targets -- -D warnings
	cargo test --locked -p pinscan-core

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check python tests benches demo
	$(VENV)/bin/ruff format --check python tests benches demo

test-python: build system-deps
	$(VENV)/bin/pytest

# Real server software the tests and the demo run against, and the browser the HTML report is
# tested in, from Debian (CI runs as root); only what is missing is installed. A policy-rc.d that
# says no keeps the package from starting a system nginx on port 80.
system-deps:
	@missing=; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null || missing="$$missing nginx-light"; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		ours=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		status=$$?; [ -z "$$ours" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi

# The seed corpus comes from the test dependencies (cryptography_vectors, certifi).
fuzz: $(DEPS_STAMP)
	cargo clippy $(FUZZ_MANIFEST) --all-targets -- -D warnings
	scripts/fuzz.sh $(FUZZ_SECONDS)

bench: build
	$(PY) benches/bench_certificates.py

clean:
	rm -rf $(VENV) target rust/pinscan-core/fuzz/target demo-out
