# Two commands: `make up` runs the whole system, `make test` passes the tests.
# Both install what they need into .venv first; nothing else is assumed but Python 3.11+.

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lock: every install path (make up, make test, the Dockerfile) takes exact versions with
# hashes from these files, so a library's new release cannot break a fresh clone. pyproject.toml
# keeps the ranges; `make lock` re-resolves them on purpose.
LOCK := requirements.txt
LOCK_RUNTIME := requirements-runtime.txt
# the same pins in the standard lock format (PEP 751) for tools that read it; pip here installs from $(LOCK)
PYLOCK := pylock.toml
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes

.PHONY: up test browser install lint format bench bench-pools schema lock drills clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setuptools (the build backend) is in the lock too, so the editable install downloads nothing.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/python -m devservers up

test: install browser
	$(BIN)/python -m pytest

# The dashboard's browser tests drive Debian's Chromium (no browser download); where it cannot
# be installed (not Debian, not root) those tests are reported as skipped with the reason.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& timeout 900 sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'; } \
		|| echo "Chromium could not be installed: the browser tests will be skipped"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-resolve pyproject.toml's ranges into the lock files, then reinstall; run `make test` after it.
# uv.lock (the project's lock, every extra) is resolved first; requirements.txt (dev = runtime + local + dev +
# fast + bench extras) takes its versions, the runtime lock and pylock.toml take requirements.txt's.
lock: install
	$(BIN)/uv lock --quiet --python 3.11
	$(BIN)/uv export --frozen --quiet --format requirements-txt --all-extras --no-emit-project --no-hashes -o .uv-pins.txt
	printf 'setuptools>=69\n' | $(UV_COMPILE) pyproject.toml - --extra local --extra dev --extra fast --extra bench -c .uv-pins.txt -o $(LOCK)
	rm -f .uv-pins.txt
	printf 'setuptools>=69\n' | $(UV_COMPILE) pyproject.toml - --extra fast -c $(LOCK) -o $(LOCK_RUNTIME)
	printf 'setuptools>=69\n' | $(UV_COMPILE:--generate-hashes=) pyproject.toml - --extra local --extra dev --extra fast --extra bench -c $(LOCK) -o $(PYLOCK)
	rm -f $(STAMP)
	$(MAKE) install

schema: install
	$(BIN)/python -m contracts.schema

# wrk drives the HTTP scenario; without it the report says so and the rest still runs
bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "wrk unavailable: the HTTP scenario will report it"
	$(BIN)/python -m bench

# the fault drills of the job core (tests/test_drills_*.py, also part of `make test`), their
# figures written to bench/RESULTS-drills.md
drills: install
	$(BIN)/python -m bench.drills

# each pool's own benchmark, written to bench/RESULTS-<name>.md (the pipelines one loads 10M rows: ~15 min)
bench-pools: install
	$(BIN)/python -m bench.ticker
	$(BIN)/python -m bench.accuracy
	$(BIN)/python -m bench.gooddata
	$(BIN)/python -m bench.forecast
	$(BIN)/python -m bench.pipelines

clean:
	-$(BIN)/python -m devservers stop
	rm -rf .data
