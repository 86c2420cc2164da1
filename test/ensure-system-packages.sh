#!/usr/bin/env bash
# Installs the server binaries the tests launch as throwaway instances, and the
# edge, browser and encoder of the player tests.
# Runs before every test run, so the common case (all present) must be a
# fast no-op that touches neither apt nor dpkg.
set -euo pipefail

# Non-login root shells may lack the sbin dirs where mariadbd lives.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# nginx is the real edge, chromium runs the real players, ffmpeg makes the test media (test/player/);
# promtool (Debian package prometheus; its server is never started) checks deploy/prometheus/;
# podman and runc build and run deploy/Dockerfile, from a base made by debootstrap (testkit/podman/).
readonly BINARIES=(mariadbd mariadb-install-db redis-server redis-sentinel nginx chromium ffmpeg promtool podman runc debootstrap)
readonly PACKAGES=(mariadb-server redis-server redis-sentinel nginx chromium ffmpeg prometheus podman runc debootstrap)

missing_binaries() {
  local b
  for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || printf '%s ' "$b"
  done
}

missing="$(missing_binaries)"
[[ -z "$missing" ]] && exit 0

if [[ "$(id -u)" -ne 0 ]]; then
  echo "ensure-system-packages: missing ${missing}and not root." >&2
  echo "  Install them with: sudo apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
  exit 1
fi

# Concurrent test runs (several engineers, CI) must not race on dpkg, and
# the second one should see the first one's install rather than redo it.
exec 9>/run/lock/st-api-ensure-system-packages.lock 2>/dev/null \
  || exec 9>/tmp/st-api-ensure-system-packages.lock
if ! flock -w 900 9; then
  echo "ensure-system-packages: timed out waiting for another install to finish" >&2
  exit 1
fi
missing="$(missing_binaries)"
[[ -z "$missing" ]] && exit 0

echo "ensure-system-packages: missing ${missing}- installing ${PACKAGES[*]}" >&2

# The packages must not start their own system services: this machine runs
# shared MariaDB/Redis on the default ports and a packaged instance would
# clash with them (or with the tests' own instances). invoke-rc.d consults
# policy-rc.d; exit 101 means "action forbidden". An existing policy-rc.d
# (Docker images ship one) is kept aside and restored untouched.
readonly POLICY=/usr/sbin/policy-rc.d
policy_backup=""
restore_policy() {
  if [[ -n "$policy_backup" ]]; then
    mv -f "$policy_backup" "$POLICY"
  else
    rm -f "$POLICY"
  fi
}
if [[ -e "$POLICY" ]]; then
  policy_backup="$(mktemp /usr/sbin/.policy-rc.d.st-backup.XXXXXX)"
  cp -p "$POLICY" "$policy_backup"
fi
trap restore_policy EXIT
trap 'exit 130' INT TERM HUP
printf '#!/bin/sh\n# temporary, from st-api test/ensure-system-packages.sh\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
timeout 600 apt-get "${apt_opts[@]}" update -q
# --no-upgrade: already-installed packages (the shared servers' own) are
# left at their version; upgrading mariadb-server would stop the shared one.
timeout 900 apt-get "${apt_opts[@]}" install -y -q --no-install-recommends --no-upgrade "${PACKAGES[@]}"

missing="$(missing_binaries)"
if [[ -n "$missing" ]]; then
  echo "ensure-system-packages: still missing after install: ${missing}" >&2
  exit 1
fi
echo "ensure-system-packages: done" >&2
