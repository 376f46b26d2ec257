# The verbs people type. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

INFRA := scripts/infra.sh

.PHONY: help infra-up infra-down infra-status infra-reset run bench bench-gateway test test-native test-compose template-check k8s-check compose-check up up-observability down images standins bench-compose lint fmt build docs

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

infra-up: ## Install (if missing) and start PostgreSQL, Redis, NATS and the MongoDB-wire server locally.
	$(INFRA) up >/dev/null

infra-down: ## Stop the local infrastructure (data is kept in .local/).
	$(INFRA) down

infra-status: ## Show whether each local server answers.
	$(INFRA) status

infra-reset: ## Stop the local infrastructure and delete its data.
	$(INFRA) reset

run: infra-up ## Run the whole platform (gateway on :8080) against the local infrastructure, until Ctrl-C.
	eval "$$($(INFRA) env)"
	cargo build --bins
	target/debug/platform run

bench: infra-up ## Checkout orders/s against the inventory ceiling, and where the time goes: stores, CPU, saga steps, memory, start-up, a burst (BENCH_ARGS="--concurrency 8 --duration 20").
	eval "$$($(INFRA) env)"
	cargo build --profile dist --bins
	target/dist/platform bench $(BENCH_ARGS)

bench-gateway: infra-up ## Requests/s and latency: upstream direct vs nginx vs the gateway with JWT + rate limiting (installs nginx if missing).
	eval "$$($(INFRA) env)"
	cargo build --profile dist -p gateway -p bench
	target/dist/bench gateway $(BENCH_GATEWAY_ARGS)

test: test-native test-compose template-check ## Every test: the workspace against local infrastructure, the compose stack in containers, then a generated platform with a new service.

test-native: infra-up ## Start the local infrastructure and run every test in the workspace.
	eval "$$($(INFRA) env)"
	export PROMTOOL="$$($(INFRA) promtool)"
	export CHROMEDRIVER="$$($(INFRA) chromium)"
	if cargo nextest --version >/dev/null 2>&1; then
	  cargo nextest run --workspace --no-fail-fast
	else
	  cargo test --workspace --no-fail-fast
	fi
	cargo test --workspace --doc

template-check: infra-up ## cargo generate a platform under another name, add a `shipping` service, and run all its checks and tests (installs cargo-generate once).
	scripts/template-check.sh

k8s-check: ## Render every Kubernetes overlay and component combination, validate it strictly and hold it (and docker-compose.yml) against the code (no cluster needed).
	$(INFRA) venv
	cargo nextest run -p platform-deploy --test manifests

compose-check: ## Check the compose files (with the observability and CI overrides) and Prometheus's configurations and alert rules, pulling nothing.
	scripts/compose.sh config-check

test-compose: ## Build the images (and stand-ins), bring up a compose stack of its own, run the journeys and chaos tests against it, then down -v.
	scripts/compose.sh test

up: ## docker compose up: build the images (and stand-ins without a registry), start, wait until all healthy.
	scripts/compose.sh up

up-observability: ## `make up` plus Prometheus, Grafana, Jaeger and the OpenTelemetry Collector (docker-compose.observability.yml; needs their images or a registry).
	OBSERVABILITY=1 scripts/compose.sh up

down: ## Stop the compose stack (data kept; `scripts/compose.sh down -v` deletes it).
	scripts/compose.sh down

images: ## Build the seven images (the services, the gateway, the storefront: platform/<binary>:0.1.0) and print their sizes.
	scripts/compose.sh images

standins: ## Build local stand-ins for the third-party images (no registry needed).
	scripts/standins.sh build

bench-compose: ## `make bench` against the running compose stack, with each container's memory idle and under load.
	scripts/compose.sh bench $(BENCH_ARGS)

docs: ## Regenerate the generated documents: docs/configuration.md (from each process's settings) and the README's services table (from services.toml).
	UPDATE_DOCS=1 cargo nextest run --workspace -E '(package(platform-registry) & test(services_table_is_the_registrys)) | (package(platform-docs) & test(the_configuration_reference_is_what_the_code_reads))'

lint: ## Formatting and clippy, as CI runs them.
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the workspace.
	cargo fmt --all

build: ## Build every crate.
	cargo build --workspace --all-targets
