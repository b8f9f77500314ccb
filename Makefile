# Build, install and test entry points. `make check` is the one CI runs.

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
# A tree where `import ganeti` finds lib/ without installing (mypy reads it)
PYLIB := build/pylib
PYTEST_ARGS ?=
# `make vcluster`: where the virtual cluster lives and how many nodes it has
VCLUSTER_DIR ?= /tmp/ganeti-vcluster
VCLUSTER_NODES ?= 3
# Node i gets the loopback address $(VCLUSTER_NET).i
VCLUSTER_NET ?= 127.0.1

.PHONY: all check check-quick deps debdeps lint typecheck test test-quick \
	vcluster vcluster-stop clean distclean

all: deps

# The full suite: lint, type check, every test including the slow ones.
check: deps lint typecheck test

# The quick suites only, for the edit-test loop.
check-quick: deps lint test-quick

deps: debdeps $(STAMP) $(PYLIB)/ganeti

debdeps:
	@tools/install-debian-deps debian-packages.txt

$(STAMP): requirements.txt requirements-dev.txt setup.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed" >&2; exit 1; }
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip setuptools wheel
	$(VPY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(VPY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(PYLIB)/ganeti:
	mkdir -p $(PYLIB)
	ln -sfn ../../lib $(PYLIB)/ganeti

lint: deps
	$(VENV)/bin/ruff check lib test daemons scripts tools qa

typecheck: deps
	MYPYPATH=$(PYLIB) $(VENV)/bin/mypy -p ganeti

test: deps
	$(VPY) -m pytest $(PYTEST_ARGS)

test-quick: deps
	$(VPY) -m pytest -m "not slow" $(PYTEST_ARGS)

# A virtual cluster of VCLUSTER_NODES nodes on this machine (tools/vcluster-setup);
# `. $(VCLUSTER_DIR)/env` then makes the gnt-* tools talk to it.
vcluster: deps
	$(VPY) tools/vcluster-setup --dir $(VCLUSTER_DIR) --nodes $(VCLUSTER_NODES) \
		--net $(VCLUSTER_NET)

# Stops every daemon of that cluster by pid; needs no dependencies.
vcluster-stop:
	$(if $(wildcard $(VPY)),$(VPY),$(PYTHON)) tools/vcluster-setup --dir $(VCLUSTER_DIR) --stop

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
