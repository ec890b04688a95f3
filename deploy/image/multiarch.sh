#!/usr/bin/env bash
# Build linux/amd64 and linux/arm64 (Raspberry Pi 4/5, Jetson) as one manifest list.
#
#   deploy/image/multiarch.sh                 # python:3.11-slim-bookworm + PyPI, both arches
#   OFFLINE=1 deploy/image/multiarch.sh       # no registry, no network in the builds:
#       Debian bases made here (base.sh, one per arch) and one wheelhouse holding every
#       arch's wheels (wheelhouse.sh with ARCH=: the other arch's from PyPI's platform
#       wheels, llama-cpp-python cross-compiled here)
#
#   MANIFEST=mongars:latest  PLATFORMS="linux/amd64 linux/arm64"  PUSH=registry/name:tag
# Each platform's image is also tagged MANIFEST-ARCH (mongars:latest-arm64), to run it.
# A foreign arch's RUN steps go through qemu-user-static + binfmt_misc (registered here
# when root); the model files are prepared by the build machine natively (the
# Dockerfile's `build-deps`/`models` stages run on BUILDPLATFORM).
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
MANIFEST=${MANIFEST:-$IMAGE}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64}
host_arch=$(dpkg --print-architecture 2>/dev/null || uname -m)

for p in $PLATFORMS; do
  a=${p#linux/}; [ "$a" = "$host_arch" ] && continue
  q=$([ "$a" = arm64 ] && echo aarch64 || echo "$a")
  # qemu 7.2 (Debian bookworm's) crashes in onnxruntime's CPU detection; 8+ does not.
  if ! "qemu-$q-static" --version 2>/dev/null | grep -qE 'version ([89]|[1-9][0-9])\.'; then
    echo "qemu-$q-static 8 or newer is needed (make multiarch-deps installs it)" >&2
    exit 3
  fi
  if [ "$(id -u)" = 0 ] && [ -d /proc/sys/fs/binfmt_misc ]; then
    [ -e /proc/sys/fs/binfmt_misc/register ] ||
      mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    # Registered again: the kernel keeps the interpreter it opened (flag F), which may
    # be an older qemu than the one installed now.
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$q" ] && echo -1 > "/proc/sys/fs/binfmt_misc/qemu-$q"
    update-binfmts --enable "qemu-$q"
  fi
done

if [ "$ENGINE" = docker ]; then
  # BuildKit keeps a multi-platform result in its cache (the classic store cannot hold
  # it): PUSH=registry/name:tag sends it to a registry.
  docker buildx build --platform "$(echo "$PLATFORMS" | tr ' ' ,)" \
    --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" \
    ${PUSH:+--tag "$PUSH" --push} ../..
  exit 0
fi

if [ -n "${OFFLINE:-}" ]; then
  ./base.sh  # the build machine's own: the `build-deps`/`models` stages run on it
  # (each run makes the host's wheels first, then that arch's if it is another one)
  for p in $PLATFORMS; do ARCH=${p#linux/} ./wheelhouse.sh; done
fi
engine manifest exists "$MANIFEST" 2>/dev/null && engine manifest rm "$MANIFEST" >/dev/null
engine image exists "$MANIFEST" 2>/dev/null && engine rmi "$MANIFEST" >/dev/null
engine manifest create "$MANIFEST" >/dev/null
for p in $PLATFORMS; do
  a=${p#linux/}
  start=$(date +%s)
  # BUILDPLATFORM: podman's buildah does not set it for FROM (the Dockerfile says why).
  args=(--platform "$p" --manifest "$MANIFEST" --format docker --layers "${ULIMITS[@]}"
        --build-arg "BUILDPLATFORM=linux/$host_arch" --tag "$MANIFEST-$a")
  if [ -n "${OFFLINE:-}" ]; then
    ARCH=$a ./base.sh
    base=$BASE_TAG; [ "$a" = "$host_arch" ] || base="$BASE_TAG-$a"
    # The local bases are single-platform: the build machine's stages need its own.
    args+=(--build-arg "BASE_IMAGE=$base" --build-arg "BUILD_BASE_IMAGE=$BASE_TAG"
           --build-arg PIP_SOURCE=wheelhouse --network none)
  else
    args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}")
    # Never the default bridge here; pip inside trusts the host's CA bundle.
    args+=(--build-arg PIP_SOURCE=pypi --network host)
    # Where the CPU torch wheel comes from for the build machine's `models` stage (and
    # EXTRAS=training): the Dockerfile's default is PyTorch's CPU index.
    [ -n "${TORCH_INDEX_URL:-}" ] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
    CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
    [ -r "$CA_BUNDLE" ] && args+=(--volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  fi
  (cd ../.. && engine build "${args[@]}" .)
  echo "$p built in $(( $(date +%s) - start )) s" >&2
done
engine manifest inspect "$MANIFEST" | grep -E '"(architecture|os)"'
if [ -n "${PUSH:-}" ]; then engine manifest push --all "$MANIFEST" "docker://$PUSH"; fi
