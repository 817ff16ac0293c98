# kefu developer entry points (GNU make). `make` / `make help` lists the targets.
# Every target is phony; add new ones with a `## description` after the colon so `help` lists them.
# Local emulator helpers live in infra/local/ (setup.sh, cargo-tools.sh, moto.sh, seed.py, with-moto.sh).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
LOCAL := infra/local
VENV = $(or $(KEFU_VENV),$(CURDIR)/.venv)
# Test runner: cargo-nextest when installed, else cargo test. Evaluated lazily (only by targets that use it);
# override with e.g. `make test TEST_CMD='cargo test -p shared'`.
TEST_CMD ?= $(if $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo y),$(CARGO) nextest run --workspace --locked --no-fail-fast,$(CARGO) test --workspace --locked --no-fail-fast -- --show-output)

.PHONY: help dev setup fmt lint unit test browser validate rehearse cost build coldstart bench bench-compare bench-send load faults events emulator-up emulator-down

help: ## list the targets
	@echo "usage: make TARGET   (variables: CARGO=$(CARGO))"
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-15s %s\n", $$1, $$2}'

dev: ## the local loop: moto + tables/queues + fake platform + kefu serve on $$KEFU_PORT (Ctrl-C stops all)
	$(LOCAL)/dev.sh

setup: ## create/refresh the Python venv with the local tools (moto, sam, cfn-lint) and the pinned cargo-hakari
	$(LOCAL)/setup.sh

fmt: ## format all Rust code
	$(CARGO) fmt --all

lint: ## rustfmt check, workspace-hack is what `cargo hakari generate` makes, clippy with warnings as errors; the functions link no test machinery
	$(CARGO) fmt --all -- --check
	CARGO="$(CARGO)" infra/check_hakari.sh
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	CARGO="$(CARGO)" infra/check_lean.sh

unit: ## run the tests without the emulator (emulator tests skip themselves)
	env -u AWS_ENDPOINT_URL $(TEST_CMD)

test: lint validate ## lint, template checks, all tests against a private moto, the stack rehearsal, then the desk in a real browser
	$(LOCAL)/with-moto.sh $(TEST_CMD)
	$(MAKE) --no-print-directory rehearse
	$(MAKE) --no-print-directory browser

browser: ## the desk page in headless Chromium (Debian's) against `make dev`'s loop: two agents, capacity, freshness, replies, quick replies, phone layout (~90 s)
	$(LOCAL)/setup.sh >/dev/null
	CARGO="$(CARGO)" tests/browser/run.sh

rehearse: ## stack rehearsal: template.yaml + the built binaries on a private IAM-enforcing moto; each permission removal must fail the chain (~3.5 min)
	$(LOCAL)/setup.sh >/dev/null
	$(CARGO) build --locked -q -p ingress -p processor -p sender -p desk -p kefu --bins
	CARGO="$(CARGO)" "$(VENV)/bin/python" infra/rehearsal/rehearse.py

validate: ## offline template checks: cfn-lint, sam validate --lint, stack rules, metrics/alarms, environment, generated files
	infra/validate.sh

cost: ## cost per message, measured: the load path as deployed (template + built release binaries + moto), priced by infra/cost/prices.json
	$(LOCAL)/setup.sh >/dev/null
	$(CARGO) build --release --locked -q -p ingress -p processor -p sender -p desk -p kefu --bins
	CARGO="$(CARGO)" "$(VENV)/bin/python" infra/cost/cost.py --profile release $(COST_ARGS)

build: ## sam build: the four arm64 bootstrap binaries (~8 min), sizes printed
	$(LOCAL)/setup.sh
	PATH="$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build
	@ls -l .aws-sam/build/*/bootstrap

bench: ## inbound pure-path benchmark: us/msg for JSON and XML safe mode, then instructions/msg under callgrind
	$(CARGO) bench -p shared --bench inbound
	CARGO="$(CARGO)" infra/bench/instructions.sh

bench-compare: ## kefu's inbound bench and an independent reference back to back (REFERENCE=dir, required), ratios per case; fails above 1.25
	@test -n "$(REFERENCE)" || { echo "bench-compare: set REFERENCE to the reference program's Cargo project (see README, Performance)" >&2; exit 2; }
	CARGO="$(CARGO)" python3 infra/bench/compare.py --reference "$(REFERENCE)" --rounds $(or $(ROUNDS),3)

bench-send: ## sender throughput and latency against the fake platform (2,000 sends, 20 callers)
	$(CARGO) bench -p integration-tests --bench send

coldstart: ## cold start of each release binary against a fake Lambda Runtime API (init ms, max RSS)
	$(LOCAL)/setup.sh
	$(LOCAL)/with-moto.sh infra/bench/coldstart.sh

load: ## ingress/processor load run against a private moto (LOAD_PUSHES=500, LOAD_CALLERS=20)
	$(LOCAL)/with-moto.sh $(CARGO) bench -p integration-tests --bench load

SEED ?= 1
PUSHES ?= 100000
SENDS ?= 10000
MIN_EACH ?= 100
faults: ## fault simulation (release build): SEED=1 PUSHES=100000 SENDS=10000; every invariant must hold and every fault kind be injected MIN_EACH=100 times
	$(CARGO) run --release --locked -q -p faults -- --seed $(SEED) --pushes $(PUSHES) --sends $(SENDS) --min-each $(MIN_EACH)

events: ## regenerate the signed fixtures under events/ (test-only keys)
	$(CARGO) run -p integration-tests --bin gen-events

emulator-up: ## start the shared local moto + tables/queues; use: eval "$(make emulator-up)"
	@$(LOCAL)/setup.sh >&2
	@$(LOCAL)/moto.sh start
	@moto_env="$$($(LOCAL)/moto.sh env)"; eval "$$moto_env"; echo "$$moto_env"; \
	  "$(VENV)/bin/python" $(LOCAL)/seed.py

emulator-down: ## stop the local moto started by emulator-up
	$(LOCAL)/moto.sh stop
