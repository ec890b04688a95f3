#!/usr/bin/env bash
# Build linux/amd64 and linux/arm64 (Raspberry Pi 4/5, Jetson) as one manifest list.
#
#   deploy/image/multiarch.sh                 # python:3.11-slim-bookworm + PyPI, both arches
#   OFFLINE=1 deploy/image/multiarch.sh       # Debian bases made here (base.sh, one per arch);
#       the host's own arch installs from the wheelhouse with no network, the other arch
#       from PyPI (llama-cpp-python compiles under qemu: slow), pip trusting CA_BUNDLE.
#
#   MANIFEST=mongars:latest  PLATFORMS="linux/amd64 linux/arm64"  PUSH=registry/name:tag
# A foreign arch runs through qemu-user-static + binfmt_misc (registered here when root).
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
MANIFEST=${MANIFEST:-$IMAGE}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64}
host_arch=$(dpkg --print-architecture 2>/dev/null || uname -m)

if [ "$(id -u)" = 0 ] && [ -d /proc/sys/fs/binfmt_misc ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] ||
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  for p in $PLATFORMS; do
    a=${p#linux/}; [ "$a" = "$host_arch" ] && continue
    q=$([ "$a" = arm64 ] && echo aarch64 || echo "$a")
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$q" ] || update-binfmts --enable "qemu-$q"
  done
fi

if [ "$ENGINE" = docker ]; then
  # BuildKit keeps a multi-platform result in its cache (the classic store cannot hold
  # it): PUSH=registry/name:tag sends it to a registry.
  docker buildx build --platform "$(echo "$PLATFORMS" | tr ' ' ,)" \
    --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" \
    ${PUSH:+--tag "$PUSH" --push} ../..
  exit 0
fi

[ -n "${OFFLINE:-}" ] && ./wheelhouse.sh
engine manifest exists "$MANIFEST" 2>/dev/null && engine manifest rm "$MANIFEST" >/dev/null
engine image exists "$MANIFEST" 2>/dev/null && engine rmi "$MANIFEST" >/dev/null
engine manifest create "$MANIFEST" >/dev/null
for p in $PLATFORMS; do
  a=${p#linux/}
  start=$(date +%s)
  args=(--platform "$p" --manifest "$MANIFEST" --format docker --layers "${ULIMITS[@]}")
  if [ -n "${OFFLINE:-}" ]; then
    ARCH=$a ./base.sh
    base=$BASE_TAG; [ "$a" = "$host_arch" ] || base="$BASE_TAG-$a"
    args+=(--build-arg "BASE_IMAGE=$base")
  else
    args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}")
  fi
  if [ -n "${OFFLINE:-}" ] && [ "$a" = "$host_arch" ]; then
    args+=(--build-arg PIP_SOURCE=wheelhouse --network none)
  else
    # Never the default bridge here; pip inside trusts the host's CA bundle.
    args+=(--build-arg PIP_SOURCE=pypi --network host)
    # Where the CPU torch wheel comes from (the Dockerfile's default: PyTorch's CPU index;
    # PyPI's aarch64 torch 2.13 pulls CUDA wheels: gigabytes).
    [ -n "${TORCH_INDEX_URL:-}" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
    CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
    [ -r "$CA_BUNDLE" ] && args+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  fi
  (cd ../.. && engine build "${args[@]}" .)
  echo "$p built in $(( $(date +%s) - start )) s" >&2
done
engine manifest inspect "$MANIFEST" | grep -E '"(architecture|os)"'
if [ -n "${PUSH:-}" ]; then engine manifest push --all "$MANIFEST" "docker://$PUSH"; fi
