#!/usr/bin/env bash
# Run by the Dockerfile's two dependency stages (`deps` for the image's platform,
# `build-deps` for the build machine's): the venv /opt/venv with what serving needs
# (pyproject.toml's dependencies and nodeps.txt; no PyTorch: the embedder runs on ONNX
# Runtime) plus the extras EXTRAS names (e.g. EXTRAS=training: the PyTorch stack).
#
#   PIP_SOURCE=pypi: PyPI (torch from TORCH_INDEX_URL, the CPU index; llama-cpp-python
#     compiled here with GGML_NATIVE=OFF, so it runs on any CPU of the architecture)
#   PIP_SOURCE=wheelhouse: only /wheels (deploy/image/wheels, made on the host by
#     wheelhouse.sh; it may hold wheels for several architectures: pip takes the ones
#     that fit the running interpreter), with --no-index
set -euo pipefail
cd /src
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
  CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=4
read -r -a extras <<< "${EXTRAS//,/ }"
python3 -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + [d for e in sys.argv[1:] for d in \
p['optional-dependencies'][e]]))" "${extras[@]}" > requirements.txt
python3 -m venv /opt/venv
if [ "$PIP_SOURCE" = wheelhouse ]; then
  pip=(/opt/venv/bin/pip install --no-index --find-links /wheels -c constraints.txt)
else
  apt-get update
  apt-get install -y --no-install-recommends build-essential cmake
  rm -rf /var/lib/apt/lists/*
  pip=(/opt/venv/bin/pip install -c constraints.txt)
  if grep -q '^torch' requirements.txt; then
    "${pip[@]}" --index-url "$TORCH_INDEX_URL" torch
  fi
fi
"${pip[@]}" -r requirements.txt
"${pip[@]}" --no-deps -r nodeps.txt
"${pip[@]}" --no-deps 'setuptools>=68' wheel
