# monGARS server image (docs/image.md): multi-stage, non-root, the embedded model
# prepared at build time, serves with no network, no PyTorch (EXTRAS=training adds it).
#
#   podman build --format docker -t mongars:latest .                 # PyPI + python:3.11-slim
#   podman build --format docker --network none -t mongars:latest \
#     --build-arg BASE_IMAGE=localhost/mongars-base:bookworm \
#     --build-arg PIP_SOURCE=wheelhouse .                             # no registry, no network
#   ... --build-arg EXTRAS=training                                   # + training (PyTorch)
#
# (No "syntax" directive on purpose: BuildKit would pull the frontend from a registry.)
ARG BASE_IMAGE=python:3.11-slim-bookworm
# The base of the stages that run on the build machine itself (BUILDPLATFORM: the
# model files are the same for every architecture, so a cross build prepares them
# natively, not under emulation). A multi-platform name such as the default resolves to
# the build machine's image by itself; a local single-platform base needs the build
# machine's own here (multiarch.sh passes it).
ARG BUILD_BASE_IMAGE=$BASE_IMAGE
# BuildKit sets this; podman 4.3's buildah does not expand it in FROM unless it is passed
# as a build argument (multiarch.sh does). Empty: the platform of the build.
ARG BUILDPLATFORM

# The base of the image's own platform, named first: a later FROM of BASE_IMAGE after a
# stage of another platform would look for the wrong platform (buildah 1.28).
FROM ${BASE_IMAGE} AS base

# --- dependencies: a venv with what serving needs, but not monGARS itself, so that a
# code change rebuilds none of this (deploy/image/install-deps.sh). PIP_SOURCE=pypi:
# from PyPI (torch from TORCH_INDEX_URL); wheelhouse: only from deploy/image/wheels
# (made on the host by deploy/image/wheelhouse.sh), with --no-index. EXTRAS: extras of
# pyproject.toml to install too (e.g. training: the PyTorch stack).
FROM base AS deps
ARG PIP_SOURCE=pypi
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=""
COPY deploy/image/wheels/ /wheels/
COPY pyproject.toml constraints.txt nodeps.txt deploy/image/install-deps.sh /src/
RUN bash /src/install-deps.sh

# --- monGARS from its sources, laid out as in the repository (/opt/mongars: the package,
# alembic.ini, migrations/, which the package finds beside itself), installed in
# editable mode.
FROM deps AS app
WORKDIR /opt/mongars
COPY pyproject.toml README.md alembic.ini ./
COPY migrations/ migrations/
COPY mongars/ mongars/
RUN /opt/venv/bin/python -m compileall -q mongars migrations \
 && /opt/venv/bin/pip install --no-deps --no-build-isolation --no-index -e .

# --- deps and app again, on the build machine, for the `models` stage. In a native
# build these are the same instructions on the same base as above: the layer cache
# builds them once.
FROM --platform=$BUILDPLATFORM ${BUILD_BASE_IMAGE} AS build-deps
ARG PIP_SOURCE=pypi
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=""
COPY deploy/image/wheels/ /wheels/
COPY pyproject.toml constraints.txt nodeps.txt deploy/image/install-deps.sh /src/
RUN bash /src/install-deps.sh

# --- what `mongars model prepare` makes, done now so a cold start is fast: the GGUF
# copied and verified into the data dir, the embedder exported to ONNX (float and int8)
# with PyTorch's reference vectors beside it, into /opt/models (read-only, part of the
# image: an empty volume on /data still embeds). The export needs PyTorch, installed in
# this stage only (the image gets the venv of `deps`). No secret and no database are
# made here: those belong to each installation.
FROM build-deps AS models
WORKDIR /opt/mongars
COPY pyproject.toml README.md alembic.ini ./
COPY migrations/ migrations/
COPY mongars/ mongars/
RUN /opt/venv/bin/python -m compileall -q mongars migrations \
 && /opt/venv/bin/pip install --no-deps --no-build-isolation --no-index -e .
ARG PIP_SOURCE=pypi
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV MONGARS_DATA_DIR=/data \
    MONGARS_MEMORY__EMBED_ONNX_DIR=/opt/models
# The exporter's packages, pinned as the training extra pins them (mongars.extras.EXPORT).
RUN /opt/venv/bin/python -c "import re, tomllib; from mongars.extras import EXPORT; \
p = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; \
print('\n'.join(d for d in p['training'] if re.match(r'[\w.-]+', d)[0] in EXPORT))" \
      > /tmp/export.txt \
 && if [ "$PIP_SOURCE" = wheelhouse ]; then \
      /opt/venv/bin/pip install --no-index --find-links /wheels -c /src/constraints.txt \
        -r /tmp/export.txt; \
    else \
      /opt/venv/bin/pip install -c /src/constraints.txt --index-url "$TORCH_INDEX_URL" torch \
      && /opt/venv/bin/pip install -c /src/constraints.txt -r /tmp/export.txt; \
    fi
# Image layers keep whole-second mtimes, and the `.verified` marker of a prepared GGUF
# records its mtime in nanoseconds: round the mtime down and record that, or every
# container would copy and verify the model again at start (the last step below).
RUN /opt/venv/bin/mongars model prepare \
 && /opt/venv/bin/python -c "import json, os, pathlib; \
[(os.utime(g, ns=(t, t)), m.write_text(json.dumps({'size': g.stat().st_size, 'mtime_ns': t}))) \
 for m in pathlib.Path('/data/models').glob('*.verified') for g in [m.with_suffix('')] \
 for t in [int(g.stat().st_mtime) * 10**9]]" \
 && ls -l /data/models /opt/models

# --- the image: the base, the dependencies' venv, monGARS, the prepared data dir.
FROM base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# llama.cpp needs OpenMP's runtime (libgomp1): the local Debian base has it, the
# python slim image may not.
# hadolint ignore=DL3008
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && useradd --uid 10001 --user-group --create-home --home-dir /home/mongars \
      --shell /usr/sbin/nologin mongars
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/mongars /opt/mongars
COPY --from=models --chown=10001:10001 /data /data
COPY --from=models /opt/models /opt/models
# The embedder the server will run loads from what was prepared (the onnx backend
# without PyTorch): a build that would not embed fails here, not at the first start.
# (Whether queries take the int8 model depends on the CPU that runs it: not checked.)
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation --no-index \
      -e /opt/mongars \
 && MONGARS_DATA_DIR=/data MONGARS_MEMORY__EMBED_ONNX_DIR=/opt/models \
    /opt/venv/bin/python -c "from mongars.offline import \
quiet_libraries; quiet_libraries(); from mongars.settings import Settings; \
from mongars.memory.embeddings import embedder_from; e = embedder_from(Settings()); e.load(); \
assert e.backend == 'onnx', e.backend; \
print('embedder:', e.backend, 'queries:', 'float' if e.onnx is None else 'int8')"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MONGARS_DATA_DIR=/data \
    MONGARS_MEMORY__EMBED_ONNX_DIR=/opt/models \
    MONGARS_HOST=0.0.0.0 \
    MONGARS_PORT=8000
USER 10001:10001
WORKDIR /data
EXPOSE 8000
# No curl in the image: Python asks /healthz (on MONGARS_PORT if it was changed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MONGARS_PORT', '8000') + '/healthz', timeout=4)"]
CMD ["mongars", "serve"]
