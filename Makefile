# The two commands: `make run` and `make test`. Both install what is missing, start the project's
# own PostgreSQL+PostGIS and Redis (unless DATABASE_URL / REDIS_URL point elsewhere), migrate,
# and stop what they started when they end. `make run WORKERS=4` serves with four API workers.
PORT ?= 8000
WORKERS ?= 1
PYTEST_ARGS ?=

.PHONY: run test bench lint setup stores-stop clean

# Recipes `exec` their script so that make's SIGTERM reaches it (make signals its child, the
# recipe shell, which would otherwise die alone). WATCH_PID is make's own pid: should make die,
# even by SIGKILL, the supervisor stops everything.
run:
	@scripts/setup.sh
	@PORT=$(PORT) WORKERS=$(WORKERS) WATCH_PID=$$PPID exec scripts/run.sh

# Browser tests (Playwright's sync API owns an event loop for its whole session) run in their own
# pytest process, after the rest, so they never share a loop with the async integration tests.
test:
	@WITH_BROWSER=1 exec scripts/with-stores.sh test sh -c '.venv/bin/python -m pytest --ignore=tests/browser --durations=20 $(PYTEST_ARGS) && .venv/bin/python -m pytest tests/browser --durations=10 $(PYTEST_ARGS)'

bench:
	@exec scripts/with-stores.sh test .venv/bin/python -m benchmarks

lint:
	@scripts/setup.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check .

setup:
	@WITH_BROWSER=1 scripts/setup.sh

stores-stop:
	@scripts/stores.sh stop run; scripts/stores.sh stop test

clean: stores-stop
	rm -rf .data .venv
