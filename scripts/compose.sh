#!/usr/bin/env bash
# The platform under Docker Compose, on machines with or without an image registry.
#
#   scripts/compose.sh images         build the seven images (and the stand-ins when needed)
#   scripts/compose.sh up             images, `up -d`, wait until every container is healthy
#   scripts/compose.sh down [ARGS]    `down` (add -v to delete the data)
#   scripts/compose.sh stats          each container's memory and CPU now (`docker stats`)
#   scripts/compose.sh bench [ARGS]   up (as `test` configures it), `platform bench` through the
#                                     published gateway, each container's memory idle and under load
#   scripts/compose.sh test           CI: a stack of its own, all-healthy, the storefront serving
#                                     the catalogue, the end-to-end journeys and chaos tests
#                                     against it, Prometheus scraping it and
#                                     evaluating the alert rules, restart and outage checks, down -v
#   scripts/compose.sh kill|start SERVICE
#                                     SIGKILL a container / start it again (the chaos tests use these)
#   scripts/compose.sh compose ARGS   any compose command, with the right files
#   scripts/compose.sh config-check   without pulling or starting anything: docker-compose.yml
#                                     alone and with each override (the observability stack's,
#                                     CI's) passes `compose config`, and promtool accepts
#                                     deploy/observability/prometheus.yml with its alert rules and
#                                     Kubernetes's version (its pod discovery aside); promtool
#                                     comes from `scripts/infra.sh promtool`
#
# It uses `docker compose` (v2) when present, else `docker-compose` (v1): docker-compose.yml
# works with both. When `mongo:8.0` can be neither found nor pulled (no registry), it builds
# local stand-ins (scripts/standins.sh) and adds docker-compose.standins.yml; STANDINS=1 or
# STANDINS=0 decides instead. Extra CA certificates the host trusts
# (/usr/local/share/ca-certificates, a TLS-inspecting proxy's) are copied into docker/extra-ca/
# for the image build's builder stage only. OBSERVABILITY=1 adds docker-compose.observability.yml
# (Prometheus, Grafana, Jaeger, the OpenTelemetry Collector, the NATS exporter): without a
# registry, only Prometheus has a stand-in, so the others must be present already.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Every image the Dockerfile builds, one per process (the gateway last: tools/scaffold adds a new
# service before it).
SERVICES=(user-service order-service payment-service inventory-service notification-service storefront gateway)
IMAGE_PREFIX=${IMAGE_PREFIX:-platform}
IMAGE_TAG=${IMAGE_TAG:-0.1.0}
HEALTHY_WITHIN=${COMPOSE_HEALTHY_WITHIN:-300}
WORK=$ROOT/.local/compose

log() { echo "compose: $*" >&2; }
die() { echo "compose: error: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is it running, may this user use it?)"

if docker compose version >/dev/null 2>&1; then
  COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE_CMD=(docker-compose)
else
  die "neither 'docker compose' nor 'docker-compose' is installed"
fi

# Whether the third-party images are stand-ins built here.
standins() {
  case ${STANDINS:-auto} in
    1 | true | yes) return 0 ;;
    0 | false | no) return 1 ;;
  esac
  if [[ -z ${STANDINS_DECIDED:-} ]]; then
    if docker image inspect mongo:8.0 >/dev/null 2>&1 \
      || timeout 60 docker pull -q mongo:8.0 >/dev/null 2>&1; then
      STANDINS_DECIDED=0
    else
      log "mongo:8.0 can be neither found nor pulled: using local stand-ins (docker-compose.standins.yml)"
      STANDINS_DECIDED=1
    fi
    export STANDINS_DECIDED
  fi
  [[ $STANDINS_DECIDED == 1 ]]
}

FILES=(-f docker-compose.yml)
compose_files() {
  FILES=(-f docker-compose.yml)
  if standins; then FILES+=(-f docker-compose.standins.yml); fi
  case ${OBSERVABILITY:-0} in
    1 | true | yes) FILES+=(-f docker-compose.observability.yml) ;;
  esac
  if [[ -n ${COMPOSE_EXTRA_FILE:-} ]]; then FILES+=(-f "$COMPOSE_EXTRA_FILE"); fi
}

compose() {
  compose_files
  "${COMPOSE_CMD[@]}" "${FILES[@]}" "$@"
}

# The CA certificates of the build network, for the builder stage (never a runtime image):
# those added to the host's store by hand (/usr/local/share/ca-certificates, as Debian and
# Ubuntu keep them), and the host's whole trusted bundle, wherever its extra ones came from.
extra_ca() {
  mkdir -p docker/extra-ca
  find docker/extra-ca -maxdepth 1 -name '*.crt' -delete
  if [[ -d /usr/local/share/ca-certificates ]]; then
    find /usr/local/share/ca-certificates -name '*.crt' -type f -exec cp {} docker/extra-ca/ \;
  fi
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt docker/extra-ca/host-trusted-bundle.crt
  fi
  return 0
}

images() {
  if standins; then
    "$ROOT/scripts/standins.sh" build
  fi
  extra_ca
  local revision version started=$SECONDS
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  version=$IMAGE_TAG
  mkdir -p "$WORK"
  for service in "${SERVICES[@]}"; do
    log "building $IMAGE_PREFIX/$service:$IMAGE_TAG (log: .local/compose/build-$service.log)"
    if ! docker build --force-rm --target "$service" \
      --build-arg VERSION="$version" --build-arg REVISION="$revision" \
      -t "$IMAGE_PREFIX/$service:$IMAGE_TAG" . >"$WORK/build-$service.log" 2>&1; then
      tail -n 40 "$WORK/build-$service.log" >&2
      die "building $service failed (the whole log: .local/compose/build-$service.log)"
    fi
  done
  log "images built in $((SECONDS - started)) s:"
  for service in "${SERVICES[@]}"; do
    docker image inspect -f "{{.Size}}" "$IMAGE_PREFIX/$service:$IMAGE_TAG" \
      | awk -v name="$IMAGE_PREFIX/$service:$IMAGE_TAG" '{printf "compose:   %-42s %5.1f MB\n", name, $1 / 1e6}' >&2
  done
}

# Waits until every container of the project is healthy (or running, for the one image that
# cannot have a healthcheck: the OpenTelemetry Collector's has no shell); on timeout, names the
# others.
wait_healthy() {
  local deadline=$((SECONDS + HEALTHY_WITHIN)) expected=${1:-0} ids states unhealthy
  while :; do
    mapfile -t ids < <(compose ps -q)
    unhealthy=()
    for id in "${ids[@]}"; do
      states=$(docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}} (no healthcheck){{end}}' "$id")
      [[ $states == *" healthy" || $states == *" running (no healthcheck)" ]] || unhealthy+=("${states#/}")
    done
    if ((${#ids[@]} >= expected && ${#ids[@]} > 0 && ${#unhealthy[@]} == 0)); then
      log "all ${#ids[@]} containers healthy"
      return 0
    fi
    if ((SECONDS > deadline)); then
      log "not healthy within ${HEALTHY_WITHIN} s: ${unhealthy[*]:-no containers}"
      return 1
    fi
    sleep 2
  done
}

container() { compose ps -q "$1"; }

health_of() { docker inspect -f '{{.State.Health.Status}}' "$(container "$1")"; }

# How many containers the stack runs: the platform's 12 (seven processes, five stores), and the
# observability stack's 5.
PLATFORM_CONTAINERS=12
expected_containers() {
  case ${OBSERVABILITY:-0} in
    1 | true | yes) echo $((PLATFORM_CONTAINERS + 5)) ;;
    *) echo "$PLATFORM_CONTAINERS" ;;
  esac
}

up() {
  images
  compose up -d
  wait_healthy "$(expected_containers)"
  local address=${PUBLISH_ADDRESS:-127.0.0.1} shop
  # The shop's session cookie is Secure: browsers keep it over plain HTTP for localhost only.
  shop=$address
  [[ $shop == 127.0.0.1 ]] && shop=localhost
  log "the platform is up:"
  log "  http://$shop:${STOREFRONT_PORT:-8000}        the shop"
  log "  http://$address:${GATEWAY_PORT:-8080}        the API (http://$address:${GATEWAY_PORT:-8080}/docs for its documentation)"
  log "  http://$address:${MAIL_UI_PORT:-8025}        the mail UI"
  case ${OBSERVABILITY:-0} in
    1 | true | yes)
      log "  http://$address:${GRAFANA_PORT:-3000}        Grafana (the dashboards)"
      log "  http://$address:${PROMETHEUS_PORT:-9090}        Prometheus (targets, alerts)"
      log "  http://$address:${JAEGER_UI_PORT:-16686}       Jaeger (traces)" ;;
  esac
}

# promtool: PROMTOOL, else what `scripts/infra.sh promtool` gives (one on PATH, else Debian's
# package unpacked under .local/, with no server started).
need_promtool() {
  if [[ -z ${PROMTOOL:-} ]]; then PROMTOOL=$("$ROOT/scripts/infra.sh" promtool); fi
}

# The compose files and the observability configuration, checked without an image: what can be
# checked offline (the collector, Jaeger and Grafana configurations are held against the compose
# file by tools/deploy/tests/manifests, `make k8s-check`).
config_check() {
  local files tmp
  for files in "" "-f docker-compose.observability.yml" "-f deploy/compose/test.yml" \
    "-f docker-compose.standins.yml -f docker-compose.observability.yml"; do
    # shellcheck disable=SC2086 # the file options split on purpose
    "${COMPOSE_CMD[@]}" -f docker-compose.yml $files config -q \
      || die "compose refuses docker-compose.yml ${files:-alone}"
    log "compose config: docker-compose.yml ${files:-alone}: valid"
  done
  need_promtool
  # The config names the rules where the container mounts them (/etc/prometheus/alerts.yml):
  # check a copy that names this checkout's, so that promtool reads them as Prometheus will.
  tmp=$(mktemp -d)
  sed "s#/etc/prometheus/alerts.yml#$tmp/alerts.yml#" deploy/observability/prometheus.yml >"$tmp/prometheus.yml"
  cp deploy/prometheus/alerts.yml "$tmp/alerts.yml"
  if ! "$PROMTOOL" check config "$tmp/prometheus.yml" >&2; then
    rm -rf "$tmp"
    die "promtool refuses deploy/observability/prometheus.yml (or deploy/prometheus/alerts.yml)"
  fi
  # Kubernetes's version (components/observability) too, but for its pod discovery: Debian
  # builds Prometheus without kubernetes_sd_configs, so that block is swapped for a static target
  # and the rest (relabelling, rule files, the static jobs) is checked. The rendering itself is
  # held against the manifests by tools/deploy/tests/manifests (`make k8s-check`).
  awk -v rules="$tmp/alerts.yml" '
    skip && match($0, /^ */) && RLENGTH > indent { next }
    { skip = 0 }
    /^ *kubernetes_sd_configs:/ {
      match($0, /^ */); indent = RLENGTH; skip = 1
      printf "%*sstatic_configs: [{targets: [\"pod.discovered:8080\"]}]\n", indent, ""
      next
    }
    { sub("/etc/prometheus/rules/alerts.yml", rules); print }
  ' deploy/k8s/components/observability/prometheus.yml >"$tmp/kubernetes.yml"
  if ! "$PROMTOOL" check config "$tmp/kubernetes.yml" >&2; then
    rm -rf "$tmp"
    die "promtool refuses deploy/k8s/components/observability/prometheus.yml (pod discovery aside)"
  fi
  rm -rf "$tmp"
  log "promtool: deploy/observability/prometheus.yml and its alert rules: valid"
  log "promtool: deploy/k8s/components/observability/prometheus.yml (pod discovery aside): valid"
}

stats() {
  mapfile -t ids < <(compose ps -q)
  ((${#ids[@]})) || die "no container is running"
  docker stats --no-stream --format 'table {{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}' "${ids[@]}"
}

# Everything a failed run needs to be understood, kept and printed.
dump_state() {
  mkdir -p "$WORK"
  local file
  file=$WORK/failed-$(date +%Y%m%d-%H%M%S).txt
  {
    compose ps
    for id in $(compose ps -aq); do
      echo "=== $(docker inspect -f '{{.Name}} {{.State.Status}} health={{if .State.Health}}{{.State.Health.Status}}{{end}} restarts={{.RestartCount}}' "$id")"
      docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' "$id" | tail -5
      docker logs --tail 60 "$id" 2>&1
    done
  } >"$file" 2>&1 || true
  log "state and logs of every container: $file (last lines below)"
  tail -n 150 "$file" >&2 || true
}

# --- the CI run ---------------------------------------------------------------------------

# A setting as compose sees it: the environment's value, else the .env file's (unquoted).
setting() {
  local name=$1 line
  if [[ -n ${!name:-} ]]; then
    printf '%s' "${!name}"
    return
  fi
  line=$(grep -E "^${name}=" .env | tail -1) || die "$name is set neither in the environment nor in .env"
  line=${line#*=}
  line=${line#[\"\']}
  printf '%s' "${line%[\"\']}"
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Starts docker-compose.observability.yml's Prometheus alone beside the running stack (the only
# image of that file with a stand-in), waits until it scrapes all seven processes, has evaluated
# every rule of deploy/prometheus/alerts.yml and stores the series the dashboards start from,
# then removes it and the override's volumes.
prometheus_check() {
  local port=${TEST_PROMETHEUS_PORT:-19090}
  OBSERVABILITY=1 PROMETHEUS_PORT=$port compose up -d --no-deps prometheus
  python3 "$ROOT/scripts/prometheus_check.py" "http://127.0.0.1:$port" 120 "${SERVICES[@]}" >&2
  OBSERVABILITY=1 PROMETHEUS_PORT=$port compose rm -sfv prometheus >/dev/null
  # `up` made every volume the override declares, Grafana's too.
  local volume
  for volume in $(comm -13 <(compose config --volumes | sort) \
    <(OBSERVABILITY=1 compose config --volumes | sort)); do
    docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
      --filter "label=com.docker.compose.volume=$volume" | xargs -r docker volume rm >/dev/null
  done
}

# The storefront as a browser first meets it, at BASE: its container healthy, /health/ready
# answering (Redis), and `/` answering 200 with an HTML page listing at least one product of the
# catalogue (the inventory's demo products, through the gateway). Retried for up to a minute:
# healthy says the process and Redis answer, not that its first page has been rendered.
storefront_check() {
  local base=$1 deadline=$((SECONDS + 60)) health tmp answer=""
  health=$(health_of storefront)
  if [[ $health != healthy ]]; then
    log "error: the storefront container is $health"
    return 1
  fi
  if ! curl -fsS -o /dev/null "$base/health/ready"; then
    log "error: the storefront's $base/health/ready is not 200"
    return 1
  fi
  tmp=$(mktemp)
  while :; do
    answer=$(curl -sS -o "$tmp" -w '%{http_code} %{content_type}' "$base/" 2>&1) || true
    if [[ $answer == "200 text/html"* ]] && grep -q 'article class="product"' "$tmp"; then
      break
    fi
    if ((SECONDS > deadline)); then
      log "the storefront's catalogue ($base/) answered: $answer; the page's beginning:"
      head -c 2000 "$tmp" >&2 || true
      echo >&2
      rm -f "$tmp"
      log "error: the storefront does not serve the catalogue (200, text/html, an article class=\"product\")"
      return 1
    fi
    sleep 2
  done
  log "the storefront serves the catalogue: $(grep -o 'article class="product"' "$tmp" | wc -l) product(s) on $base/"
  rm -f "$tmp"
}

test_stack() {
  export COMPOSE_PROJECT_NAME=platform-test
  export GATEWAY_PORT=${TEST_GATEWAY_PORT:-18080} MAIL_UI_PORT=${TEST_MAIL_PORT:-18025}
  export STOREFRONT_PORT=${TEST_STOREFRONT_PORT:-18000}
  export PUBLISH_ADDRESS=127.0.0.1 COMPOSE_EXTRA_FILE=deploy/compose/test.yml
  local gateway=http://127.0.0.1:$GATEWAY_PORT started=$SECONDS

  log "1/9 the compose files and Prometheus's configuration are valid; a required setting left empty stops compose, naming it"
  config_check
  local refused
  if refused=$(POSTGRES_PASSWORD='' compose config 2>&1 >/dev/null); then
    die "compose accepted an empty POSTGRES_PASSWORD"
  fi
  grep -q "set POSTGRES_PASSWORD in .env" <<<"$refused" || die "unexpected refusal: $refused"

  log "2/9 images and stand-ins"
  images
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  trap 'dump_state; compose down -v --remove-orphans >/dev/null 2>&1 || true' ERR

  log "3/9 up, and every container healthy"
  local up_started=$SECONDS
  compose up -d
  wait_healthy "$PLATFORM_CONTAINERS"
  log "healthy $((SECONDS - up_started)) s after up"

  log "4/9 the storefront is healthy, ready, and serves the catalogue"
  storefront_check "http://127.0.0.1:$STOREFRONT_PORT"

  log "5/9 the end-to-end journeys and chaos tests against the stack"
  export E2E_GATEWAY_URL=$gateway
  export E2E_POSTGRES_URL=postgres://postgres:$(setting POSTGRES_PASSWORD)@127.0.0.1:${TEST_POSTGRES_PORT:-15432}/postgres
  export MONGODB_URL="mongodb://127.0.0.1:${TEST_MONGO_PORT:-15017}/?directConnection=true"
  export MAIL_API_URL=http://127.0.0.1:$MAIL_UI_PORT
  E2E_ADMIN_EMAIL=$(setting ADMIN_EMAIL) E2E_ADMIN_PASSWORD=$(setting ADMIN_PASSWORD)
  export E2E_ADMIN_EMAIL E2E_ADMIN_PASSWORD E2E_FORWARDED_FOR=1
  export E2E_KILL="$ROOT/scripts/compose.sh kill {service}"
  export E2E_START="$ROOT/scripts/compose.sh start {service}"
  # Only the journeys and the chaos tests drive this stack: the storefront's browser tests
  # (storefront::*) start a platform of their own, and are never meant for a deployment.
  cargo nextest run -p platform-host --test e2e --no-fail-fast \
    -E 'test(/^journeys::/) and not test(/^storefront::/)' --test-threads 4
  cargo nextest run -p platform-host --test e2e --no-fail-fast \
    -E 'test(/^chaos::/) and not test(/^storefront::/)' --test-threads 1

  log "6/9 Prometheus (the observability override's) scrapes every process and evaluates every rule"
  prometheus_check

  log "7/9 down and up again: the data is kept and nothing is rebuilt"
  local email password=correct-horse-battery-$RANDOM output
  email=compose-$RANDOM$RANDOM@example.com
  curl -fsS -H 'content-type: application/json' -X POST "$gateway/api/v1/auth/register" \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Kept\"}" >/dev/null
  compose down
  output=$(compose up -d 2>&1)
  if grep -qiE '^(building|step [0-9])' <<<"$output"; then
    die "the second up built again: $output"
  fi
  wait_healthy "$PLATFORM_CONTAINERS"
  curl -fsS -H 'content-type: application/json' -X POST "$gateway/api/v1/auth/login" \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" | json_field '["access_token"]' >/dev/null

  log "8/9 PostgreSQL stopped: the order service turns unready and says why, without a restart"
  compose stop postgres
  local deadline=$((SECONDS + 60))
  until [[ $(health_of order-service) == unhealthy ]]; do
    ((SECONDS < deadline)) || die "the order service was still $(health_of order-service) 60 s after PostgreSQL stopped"
    sleep 2
  done
  local id
  id=$(container order-service)
  docker inspect -f '{{range .State.Health.Log}}{{.Output}}{{end}}' "$id" | grep -qi postgres \
    || die "the order service's health log does not name PostgreSQL"
  [[ $(docker inspect -f '{{.RestartCount}} {{.State.Status}}' "$id") == "0 running" ]] \
    || die "the order service restarted or stopped while PostgreSQL was down"
  docker logs "$id" 2>&1 | grep -i postgres | grep -qiE 'warn|down|unready' \
    || die "the order service's log does not say PostgreSQL is down"
  compose start postgres
  wait_healthy "$PLATFORM_CONTAINERS"

  log "9/9 down -v leaves nothing behind"
  trap - ERR
  compose down -v --remove-orphans
  local left
  left=$(
    docker ps -aq --filter label=com.docker.compose.project=platform-test
    docker volume ls -q --filter label=com.docker.compose.project=platform-test
    docker network ls -q --filter label=com.docker.compose.project=platform-test
  )
  [[ -z $left ]] || die "left behind after down -v: $left"
  log "passed in $((SECONDS - started)) s"
}

bench() {
  # The stack as CI tests it (deploy/compose/test.yml): the gateway trusts X-Forwarded-For, so
  # each simulated customer signs in from an address of its own.
  export COMPOSE_EXTRA_FILE=deploy/compose/test.yml
  export E2E_GATEWAY_URL=http://127.0.0.1:$(setting GATEWAY_PORT) E2E_FORWARDED_FOR=1
  E2E_ADMIN_EMAIL=$(setting ADMIN_EMAIL) E2E_ADMIN_PASSWORD=$(setting ADMIN_PASSWORD)
  export E2E_ADMIN_EMAIL E2E_ADMIN_PASSWORD
  images
  compose up -d
  wait_healthy "$PLATFORM_CONTAINERS"
  # The load generator only waits on the platform: its debug build (the tests') will do.
  cargo build -p platform-host --bin platform
  log "memory idle:"
  stats
  target/debug/platform bench "$@" &
  local pid=$!
  sleep "${BENCH_STATS_AFTER:-15}"
  log "memory under load:"
  stats
  wait "$pid"
}

command=${1:-help}
shift || true
case $command in
  images) images ;;
  up) up ;;
  down) compose down "$@" ;;
  stats) stats ;;
  bench) bench "$@" ;;
  test) test_stack ;;
  kill) compose kill -s SIGKILL "${1:?which service}" ;;
  start) compose start "${1:?which service}" ;;
  compose) compose "$@" ;;
  config-check) config_check ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; [[ $command == help ]] ;;
esac
