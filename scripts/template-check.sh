#!/usr/bin/env bash
# Generates a platform from this checkout under another name, adds a `shipping` service to it
# (PostgreSQL, consumes orders.confirmed, emits shipments.created), then holds the result to
# the same bar as the original: formatting, clippy, and every test of the generated workspace
# (the new service's own, the deployment checks, the end-to-end journeys including "a
# confirmed order produces a shipment") against the local infrastructure.
#
#   scripts/template-check.sh            (`make template-check`; part of `make test`)
#
# Installs cargo-generate (CARGO_GENERATE_VERSION, from crates.io) into .local/tools if it is
# missing. The generated project lives under .local/generated (replaced on each run); it
# builds in this workspace's target directory, so the dependencies compile once for both (its
# own crates have other names; the service binaries in target/debug are the last build's, and
# each cargo build of either workspace puts its own back).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# The newest cargo-generate releases need a newer rustc than 1.95; 0.23.14 is the newest that
# builds with it (`--locked`).
CARGO_GENERATE_VERSION=${CARGO_GENERATE_VERSION:-0.23.14}
TOOLS=$ROOT/.local/tools
WORK=$ROOT/.local/generated
PROJECT=acme-shop

log() { printf '\033[1m[template-check]\033[0m %s\n' "$*" >&2; }

cargo_generate() {
  local bin=$TOOLS/bin/cargo-generate
  if [[ ! -x $bin ]] || [[ $("$bin" --version 2>/dev/null) != *" $CARGO_GENERATE_VERSION"* ]]; then
    log "installing cargo-generate $CARGO_GENERATE_VERSION into $TOOLS (a few minutes, once)"
    cargo install --quiet --locked --root "$TOOLS" "cargo-generate@$CARGO_GENERATE_VERSION" >&2
  fi
  "$bin" "$@"
}

# The template as a user gets it: the tracked files (and new ones not ignored), not target/ or
# .local/.
log "copying the template"
rm -rf "$WORK"
mkdir -p "$WORK/template"
git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
  | tar --null -T - -c | tar -x -C "$WORK/template"

log "generating the platform $PROJECT"
cargo_generate generate --path "$WORK/template" --name "$PROJECT" --destination "$WORK" \
  --silent --allow-commands --vcs none \
  -d crate_prefix=acme -d image_namespace=acme -d k8s_namespace=shop
cd "$WORK/$PROJECT"
export CARGO_TARGET_DIR=$ROOT/target

log "the renamed lock file is current"
cargo metadata --locked --format-version 1 >/dev/null

# Bad answers: a clear refusal, and not one file written.
snapshot() { find . -path ./target -prune -o -type f -print0 | sort -z | xargs -0 md5sum | md5sum; }
refused() {
  local expect=$1; shift
  local before output
  before=$(snapshot)
  if output=$(cargo_generate generate --path templates/service --init --silent --allow-commands \
      --vcs none -d store=postgres "$@" 2>&1); then
    echo "the service template accepted $*" >&2; exit 1
  fi
  grep -qF -- "$expect" <<<"$output" || { echo "$output" >&2; echo "expected: $expect" >&2; exit 1; }
  [[ $(snapshot) == "$before" ]] || { echo "refusing $* changed files" >&2; exit 1; }
  log "refused ($*): $expect"
}
refused "a service named \`payment\` already exists" --name payment
refused "is not a valid service name" --name Ship_ping
refused "HTTP port 8083 is already taken" --name shipping -d http_port=8083
refused "no service publishes \`parcels\`" --name shipping -d consumes=parcels.lost

log "adding the shipping service"
cargo_generate generate --path templates/service --init --name shipping \
  --silent --allow-commands --vcs none \
  -d store=postgres -d grpc=false -d emits=shipments.created -d consumes=orders.confirmed \
  -d http_port=

# The scaffold wires the service into the configuration reference's processes; the reference
# itself is generated from the compiled code, as after any change to a setting.
log "regenerating the generated documents (make docs)"
make docs

log "checking that nothing of the original names is left"
if grep -rInE '(^|[^A-Za-z0-9_.-])platform[-_][a-z]' --exclude-dir=target --exclude-dir=.local . ; then
  echo "the lines above still carry the original crate prefix" >&2
  exit 1
fi

log "formatting and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

log "every test of the generated workspace but the infrastructure faults"
eval "$("$ROOT/scripts/infra.sh" env)"
PROMTOOL=$("$ROOT/scripts/infra.sh" promtool)
export PROMTOOL
export KUBERNETES_VALIDATE=$ROOT/.local/venv/bin/kubernetes-validate
# The faults tests (stores and broker restarted, a partition, 500 orders: about 5 minutes) and
# the storefront's browser tests (a real Chromium: about 3 minutes) exercise the same code as the
# original's run of them in `make test-native`; the generated platform's own journeys, chaos
# (services killed), storefront (its pages render) and shipping tests all run.
cargo nextest run --workspace --no-fail-fast -E 'not test(/^faults::/) and not test(/^storefront::/)'
log "the generated platform passes"
