#!/bin/sh
# Assembles, in OUT, a distroless-like root (gcr.io/distroless/cc-debian12:nonroot): the
# glibc runtime a Rust binary links against, zlib, the name-service modules, Debian's CA
# bundle, the root/nobody/nonroot users and /tmp. No shell, no package manager.
# Runs in a debian:bookworm-slim build stage with `ca-certificates` installed.
set -eu
OUT=${1:?usage: assemble.sh OUT_DIR}
# Where libc lives (/usr/lib/x86_64-linux-gnu on amd64), from the libc6 package's file list.
LIBDIR=$(dirname "$(readlink -f "$(dpkg -L libc6 | grep -m1 '/libc\.so\.6$')")")
mkdir -p "$OUT$LIBDIR" "$OUT/etc/ssl/certs" "$OUT/tmp" "$OUT/root" "$OUT/home/nonroot"
# The merged-/usr layout of Debian 12: /bin, /sbin, /lib, /lib64 are links into /usr.
for d in bin sbin lib lib64; do
  if [ -L "/$d" ]; then mkdir -p "$OUT/usr/$d"; ln -s "usr/$d" "$OUT/$d"; fi
done

# The dynamic loader, as libc6 ships it (file + the /lib64/ld-linux-x86-64.so.2 link that
# binaries name as their interpreter), then the libraries, copied under the .so.N names
# that binaries ask for (cp -L resolves Debian's .so.N -> .so.N.M.K links).
for f in $(dpkg -L libc6 | grep -E '/ld-linux[^/]*\.so\.[0-9]+$'); do
  dir=$(readlink -f "$(dirname "$f")")
  mkdir -p "$OUT$dir"
  cp -P "$f" "$OUT$dir/"
done
for l in libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1 \
         libresolv.so.2 libnss_files.so.2 libnss_dns.so.2 libz.so.1; do
  cp -L "$LIBDIR/$l" "$OUT$LIBDIR/$l"
done

# Debian's CA bundle (built by update-ca-certificates from the ca-certificates package).
cp -L /etc/ssl/certs/ca-certificates.crt "$OUT/etc/ssl/certs/ca-certificates.crt"
cp -L /usr/lib/os-release "$OUT/etc/os-release"

cat > "$OUT/etc/passwd" <<'P'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
P
cat > "$OUT/etc/group" <<'G'
root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
G
cat > "$OUT/etc/nsswitch.conf" <<'N'
passwd:         files
group:          files
shadow:         files
gshadow:        files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
N
chmod 1777 "$OUT/tmp"
chmod 700 "$OUT/root" "$OUT/home/nonroot"
chown 65532:65532 "$OUT/home/nonroot"
