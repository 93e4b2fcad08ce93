# launchplane-runner-maintainer — every target installs what it needs from nothing.
SHELL := /bin/bash
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: demo demo-evidence demo-sandbox test check lint typecheck contracts fmt sandbox-prepare clean evidence-deps

demo: .venv/.synced  ## the main job on the embedded default: a dry-run pass against the GitHub emulator
	$(RUN) python -m tests.emulators.demo

test: .venv/.synced sandbox-prepare evidence-deps  ## the whole suite: pure and emulated, then real systemd + the .deb
	$(RUN) pytest -q -m "not systemd"
	@echo "--- real-systemd tier (sandbox containers; root) ---"
	$(RUN) pytest -q -ra -m systemd

demo-evidence: .venv/.synced  ## the demo pass delivered to the evidence service; DEMO_ARGS=--serve keeps /fleet up
	$(RUN) python -m tests.evidence.demo $(DEMO_ARGS)

demo-sandbox: .venv/.synced sandbox-prepare  ## (root) the example lane's whole story on real systemd
	$(RUN) python -m tests.systemd.demo

check: lint typecheck contracts  ## static checks that .ci/run also runs

lint: .venv/.synced
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: .venv/.synced
	$(RUN) mypy --strict agent helper evidence tests bench

contracts: .venv/.synced
	$(RUN) lint-imports

fmt: .venv/.synced
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

sandbox-prepare:
	bash tests/sandbox/sandbox.sh prepare

# The evidence service's tests run a throwaway PostgreSQL cluster and Debian's headless chromium.
EVIDENCE_APT := postgresql chromium chromium-driver
evidence-deps:  ## (root, once) Debian's PostgreSQL and chromium + chromedriver for tests/evidence
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium >/dev/null \
	    && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "evidence-deps: as root: apt-get install $(EVIDENCE_APT)" >&2; exit 2; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends $(EVIDENCE_APT)

$(CURDIR)/.tools/bin/uv:
	@python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache

# ---------------------------------------------------------------- the Debian package
# make deb [DEB_VERSION=0.1.0+2] [DEB_SOURCE=head|worktree] [DEB_MACHINE=lp-build]
DEB_VERSION ?=
DEB_SOURCE ?= head
DEB_MACHINE ?= lp-build

.PHONY: deb security deb-lifecycle

deb: sandbox-prepare | $(UV)  ## the .deb into dist/, built in the sandbox from a clean copy of HEAD, lintian-clean
	UV=$(UV) bash packaging/build-deb.sh --source $(DEB_SOURCE) --machine $(DEB_MACHINE) \
	  --out $(CURDIR)/dist $(if $(DEB_VERSION),--version $(DEB_VERSION))

security: .venv/.synced sandbox-prepare  ## exposure of every unit (systemd-analyze security --offline) + verify, stderr empty
	$(RUN) python -m tests.package.security

deb-lifecycle: .venv/.synced sandbox-prepare evidence-deps  ## install, upgrade, remove, purge the .deb; the first timer pass
	LP_DEB_SOURCE=$(DEB_SOURCE) $(RUN) pytest -q -ra -m systemd tests/package

# ---------------------------------------------------------------- benchmarks
# make bench [BENCH_ARGS="--quick"|"--no-sandbox"|"--wait-quiet 0"]
BENCH_ARGS ?=

.PHONY: bench bench-evidence

bench: .venv/.synced  ## pass cost, helper latency, convergence -> table, docs/performance.{md,png} (sandbox parts: root)
	$(RUN) python -m bench $(BENCH_ARGS)

# make bench-evidence [BENCH_EVIDENCE_ARGS="--records 1000 --hosts 2000"]
BENCH_EVIDENCE_ARGS ?=

bench-evidence: .venv/.synced evidence-deps  ## evidence service ingest/read figures -> docs/performance.md (its own section)
	$(RUN) python -m bench.evidence $(BENCH_EVIDENCE_ARGS)
