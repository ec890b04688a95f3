# Sourced by the scripts here: picks the container engine and the flags these
# machines need. Nothing is written to /etc; everything is a flag or an env var.
#
#   ENGINE=podman|docker   force one (default: podman if present, else docker)
#   STORAGE_DRIVER=overlay|vfs   podman storage driver (default: podman's own, overlay
#                          here; vfs where overlay is refused, e.g. on an overlay root).
#                          Podman refuses a driver that differs from the one its store
#                          was created with, so set it from the first use or not at all.
IMAGE=${IMAGE:-mongars:latest}
BASE_TAG=${BASE_TAG:-localhost/mongars-base:bookworm}

if [ -z "${ENGINE:-}" ]; then
  if command -v podman >/dev/null 2>&1; then ENGINE=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
  else echo "neither podman nor a working docker engine found" >&2; exit 3
  fi
fi

engine() {
  if [ "$ENGINE" = podman ]; then
    # runc (crun is not what these machines run), cgroupfs (no systemd as PID 1),
    # events in a file (no journald).
    podman --runtime runc --cgroup-manager cgroupfs --events-backend file \
      ${STORAGE_DRIVER:+--storage-driver "$STORAGE_DRIVER"} "$@"
  else
    docker "$@"
  fi
}

# Explicit limits: the engine's defaults (nofile 1048576) exceed what these machines
# allow a process (runc fails "error setting rlimit type 7"), so ask for the shell's own
# hard limits, capped (NOFILE / NPROC override).
_cap() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
NOFILE=${NOFILE:-$(_cap "$(ulimit -Hn)" 65536)}
NPROC=${NPROC:-$(_cap "$(ulimit -Hu)" 16384)}
ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
