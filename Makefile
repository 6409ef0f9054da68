# SPDX-License-Identifier: Apache-2.0
# Everything a fresh machine (Rust toolchain, Python 3.11 with pip) needs: `make demo`, `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
LOCK := requirements.lock.txt
FUZZ_SECONDS ?= 60
CARGO_TARGETS := -p pinscan-core -p pinscan-py
PIP_INSTALL = -m pip install -q --disable-pip-version-check

.PHONY: all build demo test test-rust lint test-python fuzz bench catalog part-schemas system-deps clean lock test-latest

all: build

$(PY):
	$(PYTHON) -m venv $(VENV)

# Exactly what the developers tested: every package of the lock (maturin, pip, the runtime and
# test dependencies), each file checked against its hash. Plain pip reads it; the tool that
# writes it (`make lock`) is not needed here. Reinstalled whenever the lock changes.
$(DEPS_STAMP): $(LOCK) | $(PY)
	$(PY) $(PIP_INSTALL) --require-hashes -r $(LOCK)
	touch $@

# Then bytecode, as pip writes it when it installs a wheel: the editable install runs from the
# sources, and where PYTHONDONTWRITEBYTECODE is set every command would compile them again
# (~50 ms of each scan's start-up). A source changed since is compiled afresh, as always.
build: $(DEPS_STAMP)
	$(VENV)/bin/maturin develop --release --quiet
	$(PY) -m compileall -q python/pinscan
	@$(PY) -c 'import pinscan; print("pinscan", pinscan.__version__, "built into $(VENV)")'

# The demo and benchmarks run as modules from the root, where they find the local TLS fleet (fleet/).
demo: build system-deps
	$(PY) -m demo.run

test: test-rust lint fuzz test-python

FUZZ_MANIFEST := --manifest-path rust/pinscan-core/fuzz/Cargo.toml

test-rust:
	cargo fmt --all --check
	cargo fmt $(FUZZ_MANIFEST) --check
	cargo clippy --locked $(CARGO_TARGETS) --all-targets -- -D warnings
	cargo test --locked -p pinscan-core

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check python tests benches demo fleet
	$(VENV)/bin/ruff format --check python tests benches demo fleet

test-python: build system-deps
	$(VENV)/bin/pytest

# Real server software the tests and the demo run against (nginx, openssl; for STARTTLS,
# PostgreSQL, Dovecot, slapd and Exim), the browser the HTML report is tested in, and aapt2 with
# the Android framework's resources (tests compile real APKs and bundles), from Debian (CI runs as
# root); only what is missing is installed. A policy-rc.d that says no keeps the packages from
# starting system services (nginx on port 80, a PostgreSQL cluster, Dovecot, slapd, Exim): the
# tests start their own.
system-deps:
	@missing=; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null || missing="$$missing nginx-light"; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-dejavu-core"; \
	command -v aapt2 >/dev/null || missing="$$missing aapt"; \
	test -e /usr/share/android-framework-res/framework-res.apk || missing="$$missing android-framework-res"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/sbin/dovecot || missing="$$missing dovecot-imapd dovecot-pop3d"; \
	test -x /usr/sbin/slapd || missing="$$missing slapd"; \
	test -x /usr/sbin/exim4 || missing="$$missing exim4-daemon-light"; \
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
	$(PY) -m benches.bench_certificates

# The CA catalog shipped in the package, rebuilt from the vendored public data
# (data/ca-sources.tar.xz); tests/test_catalog.py checks that the shipped file is what this writes.
catalog: build
	$(PY) scripts/build_ca_catalog.py

# The Arrow schemas the scan's writer gives its parts (python/pinscan/dataset/schemas/), from the
# tables' polars schemas; tests/test_part_schemas.py checks that the shipped files are these.
part-schemas: build
	$(PY) scripts/build_part_schemas.py

# The lock, from pyproject.toml's ranges (scripts/requirements.py lists them). uv writes it
# rather than pip-tools: `--universal` resolves once for every platform and Python >= 3.11, with
# markers (pip-compile pins what the machine running it needs, so a lock made on Linux misses
# colorama for click on Windows and --require-hashes then fails there), with the hashes of every
# file; it is one dependency-free wheel, pinned here, in a venv of its own. Versions already in
# the lock are kept while the ranges allow them; `make lock UPGRADE=1` moves every package to
# the newest version allowed.
UV_VERSION := 0.13.9
LOCK_VENV := .venv-lock

lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python $(PIP_INSTALL) uv==$(UV_VERSION)
	$(PYTHON) scripts/requirements.py | $(LOCK_VENV)/bin/uv pip compile - --quiet --universal \
		--python-version 3.11 --generate-hashes --custom-compile-command 'make lock' \
		$(if $(UPGRADE),--upgrade) -o $(LOCK)

# The suite against the newest versions pyproject.toml allows, ignoring the lock, in a venv of
# its own: what a `pip install pinscan` today gets. When it passes, `make lock UPGRADE=1`.
# PYTEST_ARGS narrows the run (e.g. PYTEST_ARGS=tests/test_terminal.py).
LATEST := .venv-latest

test-latest: system-deps
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(PYTHON) scripts/requirements.py > $(LATEST)/requirements.in
	$(LATEST)/bin/python $(PIP_INSTALL) --upgrade --upgrade-strategy eager -r $(LATEST)/requirements.in
	$(LATEST)/bin/python -m pip list --format freeze --disable-pip-version-check \
		| grep -iE '^(cryptography|polars|pyarrow|rich|click|anyio|httpx)=='
	VIRTUAL_ENV=$(abspath $(LATEST)) $(LATEST)/bin/maturin develop --release --quiet
	$(LATEST)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(LATEST) $(LOCK_VENV) target rust/pinscan-core/fuzz/target demo-out
