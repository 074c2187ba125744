.PHONY: run test bench lint
run:  ## set up and run the app on SQLite with mock payments and demo tenants
	scripts/run
test:  ## set up and run the whole test suite (PostgreSQL, Redis, Chromium)
	scripts/test
bench:  ## benchmarks, on demand
	scripts/setup && .venv/bin/python -m bench
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
