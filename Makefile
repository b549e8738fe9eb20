# convlens: `make demo` and `make test` on a fresh machine; `make help` lists everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The project needs Python 3.11: python3.11 where it is installed, else python3.
PYTHON_SYSTEM ?= $(shell command -v python3.11 || command -v python3)
VENV          ?= .venv
PY            := $(VENV)/bin/python
STAMP         := $(VENV)/.installed
EXPERIMENTS   := cifar10_resnet18 fer2013_cnn
DEMOS         := demo_shapes demo_faces
EXPERIMENT    ?=
RUN           ?=
MODELS        ?=
ARGS          ?=
PYTEST_ARGS   ?=
SEEDS         ?= 3

comma := ,
space := $(subst ,, )
# MODELS="alexnet vgg11" as the Hydra list models=[alexnet,vgg11].
models_list = models=[$(subst $(space),$(comma),$(strip $(MODELS)))]

# RUN= as a quoted Hydra value (a ' in it escaped): Hydra's lexer refuses an unquoted é, and a space
# would split the argument.
run_arg = $(if $(RUN),"run='$(subst ',\',$(RUN))'")

# The experiments a stage acts on: EXPERIMENT= if given, else the real ones (or the demos for `demo`).
targets = $(if $(EXPERIMENT),$(EXPERIMENT),$(1))

.PHONY: help setup demo train sweep generate visualize evaluate report all notebook test test-slow lint tensorboard bench clean

help: ## Show the targets and variables
	@echo "convlens: train a CNN, look inside it, write the report."
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo
	@echo "Variables:"
	@echo "  EXPERIMENT=<name>  one of: $(EXPERIMENTS) $(DEMOS) (default: all real ones; demos for 'demo')"
	@echo "  RUN=<run dir>      outputs/<experiment>/<time> for generate/visualize/evaluate/report (default: latest run)"
	@echo "  MODELS=\"a b ...\"   models for compare (default: alexnet vgg11 googlenet resnet18), any of conf/model/"
	@echo "  ARGS=\"k=v ...\"     extra Hydra overrides, e.g. ARGS=\"data.data_dir=../shared/data trainer.max_epochs=1\""
	@echo "  SEEDS=<n>          seeds 0..n-1 for 'sweep' (default 3); a,b values in ARGS add a grid"

# Created on first use and created afresh (--clear) whenever pyproject.toml changes, so no package
# a previous pyproject pinned stays behind.
$(STAMP): pyproject.toml
	$(PYTHON_SYSTEM) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create the virtualenv (.venv) and install convlens with its pinned dependencies

train: $(STAMP) ## Train the real experiments (EXPERIMENT= picks one; ARGS= overrides)
	@for experiment in $(call targets,$(EXPERIMENTS)); do \
		$(PY) scripts/train.py experiment=$$experiment $(ARGS) || exit 1; \
	done

generate: $(STAMP) ## Train the generator prior (DGN-AM, PPGN) of the latest runs (or RUN=, EXPERIMENT=)
	@$(PY) scripts/generate.py $(run_arg) $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)

sweep: $(STAMP) ## Train EXPERIMENT= over SEEDS= seeds (Hydra multirun, grid in ARGS), then reports/sweep/<experiment>/<time>/
	@test -n "$(EXPERIMENT)" || { echo "make sweep needs EXPERIMENT=<name>"; exit 2; }
	@$(PY) scripts/sweep.py $(EXPERIMENT) --seeds $(SEEDS) $(ARGS)

visualize: $(STAMP) ## Visualize the latest run of each experiment (or RUN=, EXPERIMENT=)
	@$(PY) scripts/visualize.py $(run_arg) $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)

evaluate: $(STAMP) ## Score the visualized maps (localisation, faithfulness, randomization, robustness; or RUN=, EXPERIMENT=)
	@$(PY) scripts/evaluate.py $(run_arg) $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)

report: $(STAMP) ## Write reports/<experiment>/<run>/report.md (+ .html) for the latest runs (or RUN=, EXPERIMENT=)
	@$(PY) scripts/report.py $(run_arg) $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)

.PHONY: compare
compare: $(STAMP) ## Train, visualize, evaluate EXPERIMENT (default demo_shapes) with each of MODELS; one comparison report
	@$(PY) scripts/compare.py $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(if $(strip $(MODELS)),'$(models_list)') $(ARGS)

all: $(STAMP) ## train + visualize + evaluate + report for the real experiments
	@$(PY) scripts/pipeline.py $(call targets,$(EXPERIMENTS)) -- $(ARGS)

demo: $(STAMP) ## Offline demo on the CPU: train, visualize, evaluate and report both built-in datasets
	@$(PY) scripts/pipeline.py $(call targets,$(DEMOS)) -- $(ARGS)

test: $(STAMP) ## Run the default test suite (CPU; 8-12 minutes on 2 cores)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP) ## Run only the slow tests
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check src scripts tests benchmarks
	$(VENV)/bin/ruff format --check src scripts tests benchmarks

$(VENV)/.notebook: $(STAMP)
	$(PY) -m pip install --quiet -e '.[notebook]'
	@touch $@

notebook: $(VENV)/.notebook ## Open notebooks/explore.ipynb in Jupyter (installs the notebook extra on first use)
	$(VENV)/bin/jupyter notebook notebooks/explore.ipynb

tensorboard: $(STAMP) ## Open TensorBoard on outputs/
	$(VENV)/bin/tensorboard --logdir outputs

bench: $(STAMP) ## Run the benchmark scripts (benchmarks/), tables on stdout, JSON in benchmarks/results/
	@$(PY) benchmarks/run_all.py $(ARGS)

clean: ## Remove outputs/, reports/*/ and caches (keeps .venv and data/)
	rm -rf outputs reports/*/ .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
