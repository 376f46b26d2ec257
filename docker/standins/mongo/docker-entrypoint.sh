#!/bin/sh
# Entrypoint of platform-standin/mongo:secantusdb. Options alone are added to the default
# command (`docker run IMAGE --some-option`). secantusd-py started as root takes
# ownership of /data/db (a bind mount may be root's) and drops to the secantus user
# (uid 999), as the official mongo image does for mongod. An explicit (empty) --config
# keeps it from picking up a stray ./secantusd.toml or ~/.secantus/secantusd.toml.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- secantusd-py --host 0.0.0.0 --port 27017 --storage-path /data/db "$@"
fi
if [ "$1" = secantusd-py ]; then
  case " $* " in
    *" --config "* | *" --config="*) ;;
    *) shift; set -- secantusd-py --config /etc/secantusd.toml "$@" ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    find /data/db \! -user secantus -exec chown secantus:secantus '{}' +
    exec setpriv --reuid=secantus --regid=secantus --init-groups "$0" "$@"
  fi
fi
exec "$@"
