#!/usr/bin/env bash
# A base image made from Debian packages (no container registry needed):
# Debian bookworm with python3 3.11 (so the host's cp311 wheels fit), venv support,
# CA certificates and libgomp1 (llama.cpp's OpenMP), imported as $BASE_TAG.
# Skipped when the image exists (FORCE=1 rebuilds). ARCH=arm64 makes an arm64
# base (needs qemu-user-static + binfmt); its tag gets an -arm64 suffix.
#
#   deploy/image/base.sh   # -> localhost/mongars-base:bookworm
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
ARCH=${ARCH:-$(dpkg --print-architecture)}
tag=$BASE_TAG
[ "$ARCH" = "$(dpkg --print-architecture)" ] || tag="$BASE_TAG-$ARCH"
if engine image exists "$tag" 2>/dev/null && [ -z "${FORCE:-}" ]; then
  echo "base image present: $tag"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 3; }
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# minbase: essential packages + apt; docs, man pages and locales dropped to stay small.
mmdebstrap --variant=minbase --architectures="$ARCH" \
  --include=python3,python3-venv,ca-certificates,libgomp1 \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm - "$MIRROR" "$MIRROR-security bookworm-security main" |
  if [ "$ENGINE" = podman ]; then
    # The image's architecture must say what it holds, or a --platform build of another
    # arch does not find it locally (and tries a registry).
    engine import --arch "$ARCH" --os linux --change 'CMD ["/bin/bash"]' - "$tag"
  else
    engine import --platform "linux/$ARCH" --change 'CMD ["/bin/bash"]' - "$tag"
  fi
echo "base image: $tag"
