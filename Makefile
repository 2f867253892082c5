# The two commands of the README. Both set up what they need themselves.
.PHONY: run test bootstrap lint

run: bootstrap
	.venv/bin/vault serve

test: bootstrap
	scripts/test.sh

bootstrap:
	@scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check vault tests
	.venv/bin/ruff format --check vault tests
	.venv/bin/mypy vault tests
