#!/bin/sh
# Entrypoint of the redis:7-bookworm stand-in, as the official image's: options (or a
# *.conf file) alone mean `redis-server OPTIONS`; redis-server started as root drops to
# the redis user (uid 999) after taking ownership of the data dir (/data, the cwd).
# Like the official build, protected mode is off unless asked for; with no config file,
# redis binds all interfaces (its built-in default) and keeps its files in /data.
set -e

# first arg is `-f` or `--some-option`, or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
  shift
  # The official image compiles protected mode off; Debian's binary defaults to on.
  # A config file has to stay the first argument, and it may set protected-mode itself.
  case "${1:-}" in
    --protected-mode | -v | --version | -h | --help | --test-memory | --check-system)
      set -- redis-server "$@" ;;
    '' | -*) set -- redis-server --protected-mode no "$@" ;;
    *) set -- redis-server "$@" ;;
  esac
  # allow the container to be started with `--user`
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
fi

# set an appropriate umask (if one isn't set already)
um=$(umask)
if [ "$um" = 0022 ] || [ "$um" = 022 ]; then
  umask 0077
fi

exec "$@"
