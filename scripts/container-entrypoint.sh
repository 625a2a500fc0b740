#!/bin/sh
# Entry point of the pyresgate container image (Dockerfile): runs its arguments, by default `pyresgate`.
# - A config file mounted at /etc/pyresgate/config.json is used when RESGATE_CONFIG names none (a -c
#   flag still wins over both), so `-v my.json:/etc/pyresgate/config.json:ro` is all a user needs.
# - Arguments that start with "-" are gateway flags: `podman run IMAGE --debug` runs `pyresgate --debug`.
# exec: the gateway becomes PID 1 and gets SIGTERM itself (it stops gracefully on it).
set -eu
if [ -z "${RESGATE_CONFIG:-}" ] && [ -f /etc/pyresgate/config.json ]; then
  export RESGATE_CONFIG=/etc/pyresgate/config.json
fi
case "${1:-}" in
  -*) set -- pyresgate "$@" ;;
  "") set -- pyresgate ;;
esac
exec "$@"
