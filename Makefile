# compatlab: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# nbgrader shells out to alembic, so the venv's bin/ must be on PATH for everything we run.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: install demo test lab release tour doctor engine bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: install      ## the main job: autograde data/sample-class, report under build/demo
	$(RUN) $(BIN)/compatlab demo

test: install      ## the whole suite
	$(RUN) $(BIN)/python -m pytest

lab: install       ## JupyterLab on lessons/, with an engine and OLLAMA_HOST / OPENAI_BASE_URL set
	$(RUN) $(BIN)/compatlab lab

release: install   ## regenerate lessons/ and data/sample-class/submitted from solutions/
	$(RUN) $(BIN)/compatlab release

tour: install      ## one conversation of each kind through the official clients
	$(RUN) $(BIN)/compatlab tour

doctor: install
	$(RUN) $(BIN)/compatlab doctor

engine: install    ## a lab engine in the foreground on :11435
	$(RUN) $(BIN)/compatlab engine serve

bench: install     ## benchmarks: print figures, assert nothing
	$(RUN) $(BIN)/python bench/engine_throughput.py
	$(RUN) $(BIN)/python bench/proxy_overhead.py

clean:
	rm -rf $(VENV) build .pytest_cache
