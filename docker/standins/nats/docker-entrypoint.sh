#!/bin/sh
# As in the official nats alpine image: no arguments, or options alone, mean
# `nats-server OPTIONS`; anything else is run as given (e.g. `nats-server -js`, `sh`).
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
