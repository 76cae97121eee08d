VENV ?= .venv
PY := $(VENV)/bin/python
NURTURE := $(VENV)/bin/nurture
DEMO_DIR ?= $(shell mktemp -d /tmp/nurture-demo.XXXXXX)

.PHONY: install demo test lint bench schema clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	@bash scripts/demo.sh "$(NURTURE)" "$(DEMO_DIR)"

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check nurture tests
	$(VENV)/bin/ruff format --check nurture tests

schema: install
	$(NURTURE) schema > nurture/spec/sequence.schema.json

clean:
	rm -rf $(VENV) build *.egg-info
