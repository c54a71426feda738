# The two set-up commands in the README. Each installs what it needs into .venv first, at requirements.lock's versions.
.PHONY: dev test install lint lock

install:
	./scripts/bootstrap

# Install, start the embedded services and the Dagster UI; the sample clip is processed by the sensor.
dev: install
	.venv/bin/reelgraph dev

# Install and run the whole test suite (what CI runs), on TEST_WORKERS processes (`TEST_WORKERS=0` for one).
TEST_WORKERS ?= 2
test: install
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q -ra --durations=25 -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

lint: install
	.venv/bin/ruff check .

# Upgrade the dependencies: re-resolve pyproject.toml's ranges in a scratch venv and rewrite requirements.lock.
lock:
	./scripts/lock
