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
# Its hypervisor: fake, or kvm (real QEMU guests booting the test guest)
VCLUSTER_HV ?= fake
# More tools/vcluster-setup options, e.g. VCLUSTER_ARGS="--bridge br0 -j 4"
VCLUSTER_ARGS ?=

# `make install`: a virtualenv holding the package, its tools linked into
# BINDIR; daemon users named USER_PREFIX<daemon> and groups GROUP_PREFIX<name>
# (USER_PREFIX=root: every daemon runs as root)
INSTALL_ROOT ?= /opt/ganeti
BINDIR ?= /usr/local/sbin
USER_PREFIX ?= gnt-
GROUP_PREFIX ?= gnt-
# ...and the ExtStorage providers of extstorage-definitions/ into Ganeti's
# default ExtStorage search path (gnt-storage diagnose shows them)
ES_SEARCH_DIR ?= /srv/ganeti/extstorage
# ...and its manual pages and bash completion scripts (`make man`,
# `make completion`) linked into these directories
MANDIR ?= /usr/local/share/man
BASHCOMPDIR ?= /usr/local/share/bash-completion/completions

.PHONY: all install man completion check check-quick deps debdeps lint typecheck test test-quick \
	vcluster vcluster-stop vcluster-watcher clean distclean

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
	@test ! -e $(VENV) -o -w $(VENV) || { echo "$(VENV) is out of date and not" \
		"writable by you: run 'make deps' as its owner" >&2; exit 1; }
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip setuptools wheel
	$(VPY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(VPY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(PYLIB)/ganeti:
	mkdir -p $(PYLIB)
	ln -sfn ../../lib $(PYLIB)/ganeti

# Install into INSTALL_ROOT, create the daemon users and the directories
# (tools/ensure-users, tools/ensure-dirs); see doc/install.rst
install: $(PYLIB)/ganeti
	$(PYTHON) -m venv $(INSTALL_ROOT)
	$(INSTALL_ROOT)/bin/pip install --quiet -r requirements.txt docutils
	PYTHONPATH=$(CURDIR)/$(PYLIB) $(INSTALL_ROOT)/bin/python -m ganeti.tools.manpages \
		-q --outdir build/man
	PYTHONPATH=$(CURDIR)/$(PYLIB) $(INSTALL_ROOT)/bin/python -m ganeti.tools.bash_completion \
		-q --outdir build/bash_completion
	GANETI_BUILD_USER_PREFIX='$(USER_PREFIX)' GANETI_BUILD_GROUP_PREFIX='$(GROUP_PREFIX)' \
		$(INSTALL_ROOT)/bin/pip install --quiet --no-deps .
	mkdir -p $(BINDIR)
	for prog in daemon-util ganeti-masterd ganeti-noded ganeti-confd ganeti-rapi ganeti-watcher \
		ganeti-impexpd ensure-dirs ensure-users $$(ls scripts | grep -E '^(gnt-|h(bal|space|scan|info)$$)'); do \
		ln -sfn $(INSTALL_ROOT)/bin/$$prog $(BINDIR)/$$prog; done
	$(INSTALL_ROOT)/bin/ensure-users
	$(INSTALL_ROOT)/bin/ensure-dirs
	mkdir -p $(ES_SEARCH_DIR)
	cp -R extstorage-definitions/* $(ES_SEARCH_DIR)/
	for page in $(INSTALL_ROOT)/share/man/man*/*; do \
		mkdir -p $(MANDIR)/$$(basename $$(dirname $$page)); \
		ln -sfn $$page $(MANDIR)/$$(basename $$(dirname $$page))/; done
	mkdir -p $(BASHCOMPDIR)
	for script in $(INSTALL_ROOT)/share/bash-completion/completions/*; do \
		ln -sfn $$script $(BASHCOMPDIR)/; done

# Manual pages: doc/man/*.rst completed from the command tables and parsers
# (ganeti.tools.manpages), rendered by docutils into build/man/man<N>/
man: deps
	$(VPY) -m ganeti.tools.manpages -q --outdir build/man

# Bash completion, one script per program, from the same tables
# (ganeti.tools.bash_completion) into build/bash_completion/
completion: deps
	$(VPY) -m ganeti.tools.bash_completion -q --outdir build/bash_completion

lint: deps
	$(VENV)/bin/ruff check lib test daemons scripts tools qa

typecheck: deps
	MYPYPATH=$(PYLIB) $(VENV)/bin/mypy -p ganeti

# Test modules run side by side in TEST_JOBS processes (pytest-xdist; "auto":
# one per CPU; 0: all in this process); a module stays in one process, so
# its fixtures (virtual clusters) are set up once
TEST_JOBS ?= auto
XDIST = $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

test: deps
	$(VPY) -m pytest $(XDIST) $(PYTEST_ARGS)

test-quick: deps
	$(VPY) -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

# A virtual cluster of VCLUSTER_NODES nodes on this machine (tools/vcluster-setup);
# `. $(VCLUSTER_DIR)/env` then makes the gnt-* tools talk to it. Needs no root:
# run by another user, the cluster is that user's (doc/design-cluster.rst).
vcluster: deps
	$(VPY) tools/vcluster-setup --dir $(VCLUSTER_DIR) --nodes $(VCLUSTER_NODES) \
		--net $(VCLUSTER_NET) --hypervisor $(VCLUSTER_HV) $(VCLUSTER_ARGS)

# Stops every daemon of that cluster by pid; needs no dependencies (nor a
# virtualenv interpreter the invoking user can run).
vcluster-stop:
	$(shell test -x $(VPY) && echo $(VPY) || echo $(PYTHON)) tools/vcluster-setup \
		--dir $(VCLUSTER_DIR) --stop

# Runs ganeti-watcher once on every node of that cluster (the master's part
# included) and returns when the runs and the jobs they submitted have
# ended; WATCHER_ARGS are passed on, e.g. WATCHER_ARGS="--debug"
WATCHER_ARGS ?=
vcluster-watcher: deps
	$(VPY) tools/vcluster-setup --dir $(VCLUSTER_DIR) --watcher \
		--watcher-args '$(WATCHER_ARGS)'

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
