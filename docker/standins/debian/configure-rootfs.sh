#!/bin/sh
# Turns a fresh `debootstrap --variant=minbase bookworm ROOT` into what the official
# debian:bookworm-slim image holds: Debian's apt sources (deb822, as the official image
# has them), the container apt/dpkg settings the official image ships (no docs, man pages
# or translations on later installs, no daemons started by package scripts, apt caches
# cleaned after each run), and nothing of the host that ran debootstrap.
# Run by scripts/standins.sh as root; the result is imported with `docker import`.
set -eu
ROOT=${1:?usage: configure-rootfs.sh ROOTFS_DIR}
cd "$ROOT"
[ -x usr/bin/apt-get ] || { echo "configure-rootfs.sh: $ROOT is not a debootstrap root" >&2; exit 1; }

# --- apt sources: the official image's file, deb.debian.org over plain HTTP.
rm -f etc/apt/sources.list
cat > etc/apt/sources.list.d/debian.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# --- container settings, as debuerreotype writes them for the official images.
cat > etc/apt/apt.conf.d/docker-clean <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
echo 'Apt::AutoRemove::SuggestsImportant "false";' > etc/apt/apt.conf.d/docker-autoremove-suggests
echo 'Acquire::Languages "none";' > etc/apt/apt.conf.d/docker-no-languages
echo 'force-unsafe-io' > etc/dpkg/dpkg.cfg.d/docker-apt-speedup
cat > etc/dpkg/dpkg.cfg.d/docker <<'CONF'
# This is the "slim" variant: files that containers do not need are not installed.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CONF
# Package scripts must not start daemons during `docker build`.
printf '#!/bin/sh\n# prevent daemons from starting in a container build\nexit 101\n' > usr/sbin/policy-rc.d
chmod 755 usr/sbin/policy-rc.d

# --- nothing of the host: Docker provides these files at run time.
: > etc/resolv.conf
rm -f etc/hostname
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
: > etc/machine-id
rm -f var/lib/dbus/machine-id

# --- strip: apt lists and caches, logs, docs (copyright files stay), man pages, info,
# translations. The C.UTF-8 locale (/usr/lib/locale/C.utf8) stays.
rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb \
       var/cache/apt/archives/partial/* var/cache/debconf/*-old var/lib/dpkg/*-old \
       var/cache/ldconfig/aux-cache var/log/* \
       usr/share/man/* usr/share/info/* usr/share/groff/* usr/share/lintian/* usr/share/linda/* \
       usr/share/locale/*
mkdir -p var/lib/apt/lists/partial var/log/apt
find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find usr/share/doc -mindepth 1 -depth -type d -empty -delete
# debootstrap's device nodes and mount points: Docker mounts its own.
rm -rf dev/* proc/* sys/* tmp/* var/tmp/*
chmod 1777 tmp var/tmp
