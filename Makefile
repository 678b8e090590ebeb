# Two commands matter: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest postgres browser screenshots clean bench bench-full test-lowest

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,all]'
	touch $(STAMP)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) postgres browser
	$(BIN)/python -m pytest

# The web page's tests drive Chromium with Playwright (tests/browser.py): the system's own
# browser, never one downloaded at run time. Where none is installed, Debian's chromium is
# installed as root; otherwise this says what to do. PARDAG_CHROMIUM names another binary.
browser:
	@if [ -n "$${PARDAG_CHROMIUM:-}" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Chromium for the browser tests (apt-get install chromium)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	else \
		echo "the browser tests need Chromium: install your distribution's chromium package (as root: apt-get install chromium), or set PARDAG_CHROMIUM to a Chromium or Chrome binary" >&2; \
		exit 1; \
	fi

# The web page's screenshots in docs/server.md, light and dark (tests/server/ui/test_screenshots.py
# checks that they were taken of the page as it is now).
screenshots: $(STAMP) browser
	$(BIN)/python -m tests.server.ui.screenshots

# The run store tests need PostgreSQL (tests/store/conftest.py). If this machine has a cluster
# that is installed but stopped, start it; with none, the test session starts a real one from
# the pgserver wheel in a temporary folder. PARDAG_TEST_POSTGRES names another server,
# PARDAG_SKIP_POSTGRES=1 skips those tests.
postgres:
	@if [ "$${PARDAG_SKIP_POSTGRES:-}" = 1 ] || [ -n "$${PARDAG_TEST_POSTGRES:-}" ]; then :; \
	elif ! command -v pg_isready >/dev/null; then :; \
	elif pg_isready -q -h 127.0.0.1 -p 5432; then :; \
	elif [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then \
		pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql | tail -n 1)" main start || true; \
		for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

demo: $(STAMP)
	$(BIN)/python examples/parallel_speedup.py

clean:
	rm -rf $(VENV) .venv-lowest .pytest_cache .mypy_cache .ruff_cache

# The lowest versions pyproject.toml allows (uv's lowest-direct resolution), whole suite:
# run it when a lower bound changes (docs/install.md).
test-lowest:
	rm -rf .venv-lowest && $(PYTHON) -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install --quiet uv
	.venv-lowest/bin/python -m uv pip install --quiet --python .venv-lowest/bin/python \
		--resolution lowest-direct -e '.[test,all]'
	.venv-lowest/bin/python -m pytest

# Benchmarks (benchmarks/README.md): their own venv, with pardag (editable) and the anchors.
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	test -d $(BENCH_VENV) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e '.[all]'
	$(BENCH_BIN)/python benchmarks/install.py
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_BIN)/python -m benchmarks.run --quick

bench-full: $(BENCH_STAMP)
	$(BENCH_BIN)/python -m benchmarks.run --full
