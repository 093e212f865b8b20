# cnn-ablations — every target builds .venv on first use (or when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SWEEP  ?= lenet_ablation
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help venv train sweep report sync bench bench-sweep test test-all lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  Variables: SWEEP=<name> (default lenet_ablation), ARGS=\"<hydra overrides>\""

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,cluster]'
	touch $(STAMP)

venv: $(STAMP) ## Build .venv and install the project (editable) with dev extras

train: $(STAMP) ## Train LeNet-5 on the bundled MNIST digits (ARGS="model.activation=tanh ...")
	$(BIN)/python -m cnn_ablations.train $(ARGS)

sweep: $(STAMP) ## Run an ablation sweep (SWEEP=lenet_ablation ARGS="seed=0,1,2,3")
	$(BIN)/python -m cnn_ablations.train -m sweep=$(SWEEP) $(ARGS)

report: $(STAMP) ## Tables and figures for the latest sweep (or ARGS=path/to/sweep)
	$(BIN)/python -m cnn_ablations.report $(ARGS)

sync: $(STAMP) ## Upload offline W&B runs under outputs/ (lists them first; ARGS="DIR -e TEAM")
	$(BIN)/python -m cnn_ablations.sync --dry-run $(ARGS)
	$(BIN)/python -m cnn_ablations.sync $(ARGS)

bench: $(STAMP) ## Time this project's training loop against a plain loop and a PIL DataLoader
	$(BIN)/python scripts/bench.py $(ARGS)

bench-sweep: $(STAMP) ## Time start-up, a default run's epoch, a sweep's per-job overhead, LRN
	$(BIN)/python scripts/bench_sweep.py $(ARGS)

test: $(STAMP) ## Run the test suite (slow tests skipped)
	WANDB_MODE=offline $(BIN)/python -m pytest $(ARGS)

test-all: $(STAMP) ## Run every test, slow ones included
	WANDB_MODE=offline $(BIN)/python -m pytest -m '' $(ARGS)

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## Remove caches (keeps .venv and outputs/; `rm -rf .venv outputs/*` for a full reset)
	rm -rf .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
