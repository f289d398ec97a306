#!/usr/bin/env bash
# Installs what the tests' real OCI registry needs: Debian's docker-registry (the CNCF distribution registry, run by
# the JUnit fixture LocalRegistry on loopback with its own storage and configuration), htpasswd (apache2-utils, for
# bcrypt password files) and openssl (a test CA and server certificate for TLS).
#
# Idempotent: does nothing when all three packages are installed. The package's own service is never started:
# installing it on a machine with systemd would otherwise start a registry on port 5000 that nobody asked for, so the
# install runs under a policy-rc.d that forbids starting services (only when the machine has none of its own), and
# a unit the package enabled is disabled again.
set -euo pipefail

APT_TIMEOUT=900
PACKAGES=(docker-registry apache2-utils openssl)

log() { echo "install-registry: $*" >&2; }
die() { echo "install-registry: ERROR: $*" >&2; exit 1; }

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

missing=$(missing_packages "${PACKAGES[@]}")
if [ -z "$missing" ]; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "must run as root to install: $(echo $missing)"

apt_quiet() { timeout "$APT_TIMEOUT" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >&2; }

policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by vllmsnap hack/install-registry.sh for the length of one install\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { [ "$own_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

log "installing packages: $(echo $missing)"
# shellcheck disable=SC2086
apt_quiet install --no-install-recommends $missing || { apt_quiet update && apt_quiet install --no-install-recommends $missing; }

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  timeout 60 systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi
command -v docker-registry >/dev/null || die "docker-registry is not on PATH after the install"
log "installed: $(docker-registry --version 2>/dev/null || echo docker-registry)"
