#!/usr/bin/env bash
# Build the monGARS image with podman or docker, whichever is present.
#
#   deploy/image/build.sh                # python:3.11-slim-bookworm + PyPI (needs a registry)
#   OFFLINE=1 deploy/image/build.sh      # a Debian base made here (base.sh) + a host-built
#                                        # wheelhouse (wheelhouse.sh); the build itself runs
#                                        # with --network none: no registry, no network
#
#   IMAGE=mongars:latest  BASE_IMAGE=...  PIP_SOURCE=pypi|wheelhouse
#   EXTRAS=training                      (the PyTorch stack in the image: training runs,
#                                        the PyTorch embedder; ~2 GB more)
#   CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt   (podman, PyPI builds: mount the
#                                        host's CA bundle where pip inside looks for it)
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
if [ -n "${OFFLINE:-}" ]; then
  ./base.sh
  ./wheelhouse.sh
  BASE_IMAGE=${BASE_IMAGE:-$BASE_TAG}
  PIP_SOURCE=${PIP_SOURCE:-wheelhouse}
  NETWORK=(--network none)
else
  BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
  PIP_SOURCE=${PIP_SOURCE:-pypi}
  # Never the engine's default bridge on these machines (10.88.0.0/16 is a private range).
  NETWORK=(--network host)
fi
cd ../..
args=(--tag "$IMAGE" --file Dockerfile --build-arg "BASE_IMAGE=$BASE_IMAGE"
      --build-arg "PIP_SOURCE=$PIP_SOURCE" "${NETWORK[@]}" "${ULIMITS[@]}")
[ -n "${TORCH_INDEX_URL:-}" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
[ -n "${EXTRAS:-}" ] && args+=(--build-arg "EXTRAS=$EXTRAS")
if [ "$ENGINE" = podman ]; then
  # docker format: the OCI format has no HEALTHCHECK, podman would drop it.
  args+=(--format docker --layers)
  if [ -n "${CA_BUNDLE:-}" ]; then
    args+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro"
           --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
  fi
fi
start=$(date +%s)
engine build "${args[@]}" "$@" .
echo "built $IMAGE from $BASE_IMAGE ($PIP_SOURCE) in $(( $(date +%s) - start )) s:" \
  "$(engine image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
