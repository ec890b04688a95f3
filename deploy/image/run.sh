#!/usr/bin/env bash
# Start the image (built by build.sh) in the foreground.
#
#   deploy/image/run.sh                       # http://127.0.0.1:8000, data in volume mongars-data
#   PORT=8080 NAME=mongars VOLUME=mongars-data NETWORK=host deploy/image/run.sh
#   NETWORK=none deploy/image/run.sh          # no network at all (use `exec` to reach it)
#
# The server uses the host's network namespace by default (NETWORK=host): these machines
# must not use the engine's default bridge (10.88.0.0/16, a private range). Elsewhere,
# NETWORK=bridge publishes PORT with -p 127.0.0.1:PORT:8000 instead.
# Extra arguments go to `run` (e.g. -e MONGARS_LOG_LEVEL=debug).
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
PORT=${PORT:-8000}
NAME=${NAME:-mongars}
VOLUME=${VOLUME:-mongars-data}
NETWORK=${NETWORK:-host}
args=(--rm --name "$NAME" "${ULIMITS[@]}" --network "$NETWORK"
      --volume "$VOLUME:/data" --env "MONGARS_PORT=$PORT")
if [ "$NETWORK" = bridge ]; then
  args+=(--publish "127.0.0.1:$PORT:8000" --env MONGARS_PORT=8000)
fi
echo "monGARS on http://127.0.0.1:$PORT (container $NAME, data in $VOLUME)" >&2
engine run "${args[@]}" "$@" "$IMAGE"
