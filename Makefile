# cnn-ablations — every target builds .venv on first use (or when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SWEEP  ?= lenet_ablation
ARGS   ?=
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.DEFAULT_GOAL := help
.PHONY: help venv data train sweep report sync dashboard publish bench bench-sweep test test-all lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  Variables: SWEEP=<name> (default lenet_ablation), ARGS=\"<hydra overrides>\""

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,cluster]'
	touch $(STAMP)

venv: $(STAMP) ## Build .venv and install the project (editable) with dev extras

data: ## Install the real Fashion-MNIST for offline use: Debian's dataset-fashion-mnist (apt, root or sudo)
	@if [ -f $(FASHION_MNIST)/t10k-labels-idx1-ubyte.gz ]; then \
	  echo "Fashion-MNIST is installed in $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "make data: no apt here; on a machine with internet run: python -c \"import torchvision; torchvision.datasets.FashionMNIST('data', download=True)\" and copy data/FashionMNIST into this checkout (or set paths.data_dir)"; \
	  exit 1; \
	fi

train: $(STAMP) ## Train LeNet-5 on the bundled MNIST digits (ARGS="model.activation=tanh ...")
	$(BIN)/python -m cnn_ablations.train $(ARGS)

sweep: $(STAMP) ## Run an ablation sweep and its report (SWEEP=lenet_ablation ARGS="seed=0,1,2,3")
	@case "$$($(BIN)/python -c 'from cnn_ablations.sweep_callbacks import sweep_dataset; print(sweep_dataset("$(SWEEP)"))' 2>/dev/null)" in fashion_mnist*) $(MAKE) --no-print-directory data || true;; esac
	$(BIN)/python -m cnn_ablations.train -m sweep=$(SWEEP) $(ARGS)

report: $(STAMP) ## Tables and figures for the latest sweep (or ARGS=path/to/sweep)
	$(BIN)/python -m cnn_ablations.report $(ARGS)

sync: $(STAMP) ## Upload offline W&B runs under outputs/ (lists them first; ARGS="DIR -e TEAM")
	$(BIN)/python -m cnn_ablations.sync --dry-run $(ARGS)
	$(BIN)/python -m cnn_ablations.sync $(ARGS)

dashboard: $(STAMP) ## W&B Report + workspace of the latest sweep: saved online, else JSON in its report/
	$(BIN)/python -m cnn_ablations.dashboard $(ARGS)

publish: $(STAMP) ## Upload the latest sweep's offline runs, then save its W&B Report (ARGS=--sweep-dir=DIR)
	$(BIN)/python -m cnn_ablations.dashboard --publish $(ARGS)

bench: $(STAMP) ## Time this project's training loop against a plain loop and a PIL DataLoader
	$(BIN)/python scripts/bench.py $(ARGS)

bench-sweep: $(STAMP) ## Time start-up, a default run's epoch, a sweep's per-job overhead, LRN, bf16
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
