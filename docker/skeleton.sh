#!/bin/sh
# The Dockerfile's dependency cache, without cargo-chef: what cargo needs to compile the
# workspace's third-party dependencies, and nothing that changes when our own code does.
#
#   skeleton.sh make SRC SKELETON SOURCES
#       SKELETON: the workspace's manifests, Cargo.lock and build scripts (with the files beside
#       them, e.g. proto/'s .proto files), every target root (lib, bins, tests, benches,
#       examples, declared or discovered) replaced by an empty stub. Its content changes only
#       when a manifest, the lock file or a build script does, so the Docker layer that compiles
#       the dependencies from it survives edits to the sources.
#       SOURCES: SRC without the members' tests/, benches/ and examples/ (never part of a
#       release binary), so editing a test does not rebuild the images either.
#   skeleton.sh touch DIR
#       Touches every stubbed target root under DIR. The build stage copies the real files over
#       the stubs with their old modification times; cargo compares times, not contents, and
#       would keep the stubs' artifacts without this.
#
# Targets come from `cargo metadata --no-deps` (offline, nothing compiled), so custom paths,
# autodiscovery and `auto* = false` are cargo's own. Path dependencies outside the workspace
# members are not supported (there are none).
set -eu

usage() {
    echo "usage: $0 make SRC SKELETON SOURCES | $0 touch DIR" >&2
    exit 2
}

# The workspace's metadata, one JSON line, in the file $meta. Every field read from it is a
# plain path or name, so grep and sed suffice (the builder image has no jq).
read_metadata() {
    meta=$(mktemp)
    trap 'rm -f "$meta" "$meta".*' EXIT
    cargo metadata --offline --no-deps --format-version 1 --manifest-path "$1/Cargo.toml" >"$meta"
}

# "KIND PATH" per target, PATH relative to the workspace root $1; KIND is the first of the
# target's kinds (lib, bin, test, bench, example, custom-build, proc-macro, rlib, ...).
targets() {
    grep -o '"kind":\[[^]]*\],"crate_types":\[[^]]*\],"name":"[^"]*","src_path":"[^"]*"' "$meta" |
        sed 's/^"kind":\["\([^"]*\)".*"src_path":"\([^"]*\)"$/\1 \2/' >"$meta.targets"
    [ -s "$meta.targets" ] || fail "no targets found in cargo metadata's output"
    while read -r kind path; do
        case $path in
        "$1"/*) echo "$kind ${path#"$1"/}" ;;
        *) fail "target $path is outside the workspace $1" ;;
        esac
    done <"$meta.targets"
    rm -f "$meta.targets"
}

# Each member's directory, relative to the workspace root $1 ("." for a root package).
members() {
    grep -o '"manifest_path":"[^"]*"' "$meta" | sed 's/^"manifest_path":"\(.*\)"$/\1/' >"$meta.members"
    [ -s "$meta.members" ] || fail "no members found in cargo metadata's output"
    while read -r manifest; do
        case $manifest in
        "$1"/Cargo.toml) echo . ;;
        "$1"/*/Cargo.toml) dir=${manifest#"$1"/} && echo "${dir%/Cargo.toml}" ;;
        *) fail "member $manifest is outside the workspace $1" ;;
        esac
    done <"$meta.members"
    rm -f "$meta.members"
}

fail() {
    echo "skeleton.sh: $*" >&2
    exit 1
}

make_skeleton() {
    src=$(cd "$1" && pwd -P)
    skeleton=$2
    sources=$3
    rm -rf "$skeleton" "$sources"
    mkdir -p "$skeleton"
    read_metadata "$src"
    members "$src" >"$meta.dirs"
    targets "$src" >"$meta.roots"

    # The workspace: its manifest, the lock file and cargo's configuration, if any.
    cp -p "$src/Cargo.toml" "$src/Cargo.lock" "$skeleton/"
    for config in .cargo/config.toml .cargo/config; do
        if [ -f "$src/$config" ]; then
            mkdir -p "$skeleton/.cargo"
            cp -p "$src/$config" "$skeleton/$config"
        fi
    done

    # Every member's manifest: cargo cannot load the workspace without all of them.
    while read -r dir; do
        mkdir -p "$skeleton/$dir"
        cp -p "$src/$dir/Cargo.toml" "$skeleton/$dir/Cargo.toml"
    done <"$meta.dirs"

    while read -r kind path; do
        mkdir -p "$skeleton/$(dirname "$path")"
        case $kind in
        custom-build)
            # A build script runs for real (proto/'s compiles the .proto files): keep it and
            # the files beside it in its package, but not the package's Rust sources or tests.
            package=$(dirname "$path")
            while [ ! -f "$src/$package/Cargo.toml" ]; do package=$(dirname "$package"); done
            (cd "$src/$package" && find . \( -path ./target -o -path ./src -o -path ./tests \
                -o -path ./benches -o -path ./examples \) -prune -o -type f ! -name '*.rs' -print) \
                >"$meta.data"
            while read -r file; do
                mkdir -p "$skeleton/$package/$(dirname "$file")"
                cp -p "$src/$package/$file" "$skeleton/$package/$file"
            done <"$meta.data"
            cp -p "$src/$path" "$skeleton/$path"
            ;;
        bin | test | bench | example) printf 'fn main() {}\n' >"$skeleton/$path" ;;
        *) : >"$skeleton/$path" ;;
        esac
    done <"$meta.roots"

    # The sources, minus what no release binary is built from, and minus the extra CA
    # certificates (the toolchain stage has installed them already).
    cp -a "$src" "$sources"
    while read -r dir; do
        rm -rf "$sources/$dir/tests" "$sources/$dir/benches" "$sources/$dir/examples"
    done <"$meta.dirs"
    rm -rf "$sources/docker/extra-ca"
    rm -f "$meta.dirs" "$meta.roots" "$meta.data"
}

touch_roots() {
    root=$(cd "$1" && pwd -P)
    read_metadata "$root"
    targets "$root" >"$meta.roots"
    while read -r kind path; do
        if [ "$kind" != custom-build ] && [ -f "$root/$path" ]; then
            touch "$root/$path"
        fi
    done <"$meta.roots"
    rm -f "$meta.roots"
}

case ${1:-} in
make)
    [ $# -eq 4 ] || usage
    make_skeleton "$2" "$3" "$4"
    ;;
touch)
    [ $# -eq 2 ] || usage
    touch_roots "$2"
    ;;
*) usage ;;
esac
