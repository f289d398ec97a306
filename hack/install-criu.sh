#!/usr/bin/env bash
# Installs CRIU >= 4.2 (built from Debian sid sources) plus the runtime tools vllmsnap's tests and demo use.
#
# Why build: bookworm's criu 3.17 cannot handle the vDSO of kernels >= 6.x here, and CRIU 4.1 fails to dump INET
# sockets on kernels >= 6.16. CRIU 4.2.1 works. sid carries it as source; we fetch it through a PRIVATE apt
# configuration (own sources list, own lists/cache dirs) so the machine's apt state is not touched.
#
# Supply chain: the agent image runs this CRIU as root on every GPU node, so its source is checked twice. apt
# verifies sid's signed InRelease with the Debian archive keyring and, through it, the checksums of the source
# package (no [trusted=yes]); and the upstream tarball must have exactly the SHA-256 pinned below, checked before it
# is unpacked, every time (a cached tarball too). A newer sid version is refused until someone pins it here.
#
# Our patches (hack/criu-patches/*.patch, applied in name order) go on top of the upstream source: see each file's
# header for why.
#
# Idempotent: does nothing when $CRIU_PREFIX/sbin/criu reports >= 4.2 and its install stamp names the current patch
# set and that very binary. Build results are cached under $VLLMSNAP_CACHE (default ~/.cache/vllmsnap/criu) in a
# directory named after the version and a hash of the patch set, so a second install on the same machine does not
# rebuild, and a changed patch set does.
#
# Environment:
#   VLLMSNAP_CACHE      cache directory (default: ~/.cache/vllmsnap)
#   CRIU_PREFIX         where the binary goes (default: /usr/local; binary at $CRIU_PREFIX/sbin/criu)
#   CRIU_MIN_VERSION    minimum acceptable version (default: 4.2)
#   CRIU_SKIP_TOOLS=1   do not install iproute2/nftables/util-linux
# Usage: hack/install-criu.sh                 install (idempotent)
#        hack/install-criu.sh --verify FILE   only check FILE against the pinned tarball digest (exit 0 if it matches)
# The CUDA plugin is built too and left in $VLLMSNAP_CACHE/criu/plugins (not CRIU's default plugin dir: vllmsnap
# drives GPU checkpoints itself, and a plugin in the default dir would be loaded into every dump).
set -euo pipefail

# The upstream source this script builds, pinned: version and SHA-256 of Debian's criu_<version>.orig.tar.xz (the
# same digest Debian's signed criu_4.2.1-1.dsc lists). To move to a newer CRIU, check the new tarball against its
# signed .dsc and the upstream release, then change both lines together.
CRIU_VERSION=4.2.1
CRIU_ORIG_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
ARCHIVE_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

MIN_VERSION="${CRIU_MIN_VERSION:-4.2}"
CACHE="${VLLMSNAP_CACHE:-${HOME:-/root}/.cache/vllmsnap}/criu"
PREFIX="${CRIU_PREFIX:-/usr/local}"
PATCHES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/criu-patches"
STAMP="$PREFIX/share/vllmsnap/criu.stamp"
APT_TIMEOUT=900

log() { echo "install-criu: $*" >&2; }
die() { echo "install-criu: ERROR: $*" >&2; exit 1; }

# Does file $1 have the pinned digest? (No output; the caller says what it does about it.)
matches_pin() {
  [ -f "$1" ] && [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$CRIU_ORIG_SHA256" ]
}

if [ "${1:-}" = "--verify" ]; then
  [ -n "${2:-}" ] || die "usage: $0 --verify FILE"
  if matches_pin "$2"; then
    log "$2 is criu $CRIU_VERSION (sha256 $CRIU_ORIG_SHA256)"; exit 0
  fi
  die "$2 does not have the pinned sha256 of criu $CRIU_VERSION ($CRIU_ORIG_SHA256)"
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (CRIU needs root, and so does installing it)"

version_at_least() { # $1 >= $2 ?
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# Version of the criu binary $1 (empty when it is missing or does not run).
version_of() {
  [ -x "$1" ] || return 0
  "$1" --version 2>/dev/null | awk '/^Version:/{print $2; exit}'
}

patch_files() {
  ls "$PATCHES_DIR"/*.patch 2>/dev/null | LC_ALL=C sort || true
}

# Names the patch set: a hash of every patch's name and content ("none" without patches).
patch_set_id() {
  local files; files=$(patch_files)
  [ -z "$files" ] && { echo none; return; }
  local f
  for f in $files; do basename "$f"; sha256sum < "$f"; done | sha256sum | cut -c1-12
}

# What the stamp says for the binary at $PREFIX/sbin/criu built with patch set $1.
stamp_line() {
  echo "patches=$1 binary=$(sha256sum < "$PREFIX/sbin/criu" | cut -d' ' -f1)"
}

up_to_date() { # $1 = patch set id
  [ -f "$STAMP" ] || return 1
  local v; v=$(version_of "$PREFIX/sbin/criu")
  [ -n "$v" ] && version_at_least "$v" "$MIN_VERSION" && [ "$(cat "$STAMP")" = "$(stamp_line "$1")" ]
}

# apt output goes to stderr: several functions here return their result on stdout.
apt_quiet() { timeout "$APT_TIMEOUT" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@" >&2; }

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

install_packages() {
  local missing
  missing=$(missing_packages "$@")
  [ -z "$missing" ] && return 0
  log "installing packages: $(echo $missing)"
  # shellcheck disable=SC2086
  apt_quiet install --no-install-recommends $missing || { apt_quiet update && apt_quiet install --no-install-recommends $missing; }
}

runtime_tools() {
  [ "${CRIU_SKIP_TOOLS:-0}" = 1 ] && return 0
  # ip netns (iproute2), network lock (nftables), unshare/nsenter (util-linux), procps for pgrep in scripts.
  install_packages iproute2 nftables util-linux procps
}

# The Debian mirror the machine already uses (no host name is written into this repository).
debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '{for(i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' | grep -v -- '-security' | head -n1 || true)
  fi
  [ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt sources"
  echo "$uri"
}

BUILD_DEPS=(build-essential libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev
  libprotobuf-c-dev libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf
  libaio-dev xz-utils patch)

# Prints the path of the pinned upstream tarball, downloading it when the cache has no copy with the pinned digest.
fetch_source() {
  local apt_dir="$CACHE/apt" src_dir="$CACHE/src"
  local tarball="$src_dir/criu_${CRIU_VERSION}.orig.tar.xz"
  if matches_pin "$tarball"; then
    echo "$tarball"; return 0
  fi
  # A cached file that does not match was tampered with or cut short: never use it.
  rm -f "$tarball"
  [ -f "$ARCHIVE_KEYRING" ] || install_packages debian-archive-keyring
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$src_dir"
  # Signed: apt checks sid's InRelease against the Debian archive keys, and the source files against its checksums.
  echo "deb-src [signed-by=$ARCHIVE_KEYRING] $(debian_mirror) sid main" > "$apt_dir/sources.list"
  local private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  log "fetching criu source from Debian sid (private apt state under $apt_dir)"
  apt_quiet "${private[@]}" update
  # Only the upstream (orig) tarball is needed; the Debian packaging part may be missing on a mirror, so a
  # failing download is judged by whether the pinned orig tarball arrived.
  (cd "$src_dir" && apt_quiet "${private[@]}" source --download-only criu) || true
  if ! matches_pin "$tarball"; then
    local offered; offered=$(ls "$src_dir"/criu_*.orig.tar.* 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
    die "Debian sid did not provide criu $CRIU_VERSION with the pinned sha256 $CRIU_ORIG_SHA256 (got: ${offered:-nothing}). \
If sid moved to a newer CRIU, verify it and update CRIU_VERSION and CRIU_ORIG_SHA256 in $0."
  fi
  echo "$tarball"
}

build() {
  local tarball="$1" patch_set="$2" build_root="$CACHE/build"
  local ver="$CRIU_VERSION"
  version_at_least "$ver" "$MIN_VERSION" || die "the pinned criu $ver is older than $MIN_VERSION"
  local name="criu-$ver-$patch_set"
  local dir="$build_root/$name" build_log="$CACHE/build-$name.log"
  if [ ! -x "$dir/criu/criu" ]; then
    install_packages "${BUILD_DEPS[@]}"
    # Checked again right before unpacking: nothing unverified is ever unpacked, built or run.
    matches_pin "$tarball" || die "$tarball does not have the pinned sha256 $CRIU_ORIG_SHA256"
    rm -rf "$dir" && mkdir -p "$dir"
    tar -xf "$tarball" -C "$dir" --strip-components=1
    local p
    for p in $(patch_files); do
      log "applying $(basename "$p")"
      (cd "$dir" && timeout 60 patch -p1 --forward --batch --silent < "$p") >&2 \
        || die "patch $(basename "$p") does not apply to criu $ver"
    done
    log "building criu $ver (patch set $patch_set) in $dir (make -j2)"
    (cd "$dir" && timeout 1800 make -j2 >"$build_log" 2>&1) \
      || { tail -n 30 "$build_log" >&2; die "criu build failed (log: $build_log)"; }
    # Builds of other versions or patch sets are not used any more.
    find "$build_root" -mindepth 1 -maxdepth 1 -name 'criu-*' ! -name "$name" -exec rm -rf {} +
  fi
  if [ ! -f "$dir/plugins/cuda/cuda_plugin.so" ]; then
    (cd "$dir" && timeout 600 make -C plugins/cuda >>"$build_log" 2>&1) \
      || log "warning: CUDA plugin did not build (see $build_log); vllmsnap does not need it"
  fi
  echo "$dir"
}

main() {
  runtime_tools
  local criu="$PREFIX/sbin/criu" current patch_set
  patch_set=$(patch_set_id)
  if up_to_date "$patch_set"; then
    log "criu $(version_of "$criu") with patch set $patch_set already installed ($criu)"
  else
    current=$(version_of "$criu")
    log "criu at $criu: ${current:-missing}; need >= $MIN_VERSION with patch set $patch_set"
    mkdir -p "$CACHE"
    local tarball dir
    tarball=$(fetch_source)
    dir=$(build "$tarball" "$patch_set")
    # Runtime libraries come with the -dev packages installed for the build; a cached build on a fresh machine
    # needs them too.
    install_packages libbsd0 libcap2 libnet1 libnftables1 libnl-3-200 libprotobuf-c1 libgnutls30 libaio1 libuuid1
    # Into place by rename: a criu that runs right now keeps its file.
    install -D -m 0755 "$dir/criu/criu" "$criu.new.$$" && mv -f "$criu.new.$$" "$criu"
    if [ -f "$dir/plugins/cuda/cuda_plugin.so" ]; then
      install -D -m 0644 "$dir/plugins/cuda/cuda_plugin.so" "$CACHE/plugins/cuda_plugin.so"
    fi
    current=$(version_of "$criu")
    [ -n "$current" ] && version_at_least "$current" "$MIN_VERSION" \
      || die "installed $criu reports '${current:-nothing}', expected >= $MIN_VERSION"
    mkdir -p "$(dirname "$STAMP")" && stamp_line "$patch_set" > "$STAMP"
    log "installed criu $current (patch set $patch_set) at $criu"
  fi
  hash -r
  [ "$(command -v criu || true)" = "$criu" ] \
    || log "warning: criu on PATH is '$(command -v criu || true)', not $criu (set VLLMSNAP_CRIU=$criu or fix PATH)"
  local check
  if check=$(timeout 60 "$criu" check 2>&1); then
    log "criu check: $(echo "$check" | tail -n1)"
  else
    echo "$check" >&2
    die "criu check failed: this kernel lacks something CRIU needs"
  fi
}

main "$@"
