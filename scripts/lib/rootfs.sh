# shellcheck shell=bash
# Debian root filesystems for building and testing the package (scripts/build-deb.sh,
# scripts/test-system.sh): made with debootstrap from this machine's own Debian mirror, kept under
# $ONSHI_ROOTFS_CACHE (default /var/cache/onshi-test, outside the repository) and reused while
# they hold what is asked of them. A foreign architecture (arm64 on an x86_64 machine) runs
# through qemu-user-static's binfmt handler. Needs root, debootstrap and systemd-container.
set -euo pipefail

ONSHI_ROOTFS_CACHE="${ONSHI_ROOTFS_CACHE:-/var/cache/onshi-test}"
ONSHI_SUITE="${ONSHI_SUITE:-trixie}"

rootfs_say() { printf 'rootfs: %s\n' "$*" >&2; }
rootfs_die() { printf 'rootfs: error: %s\n' "$*" >&2; exit 1; }

host_deb_arch() { dpkg --print-architecture; }

# The first Debian mirror this machine's apt uses (deb822 "URIs:" or one-line "deb URL suite").
debian_mirror() {
  local m
  m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -nE 's#^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)([a-z]+://[^[:space:]]+/debian)/?([[:space:]].*)?$#\3#p' | head -n1)"
  echo "${m:-http://deb.debian.org/debian}"
}

# A foreign architecture needs qemu-user-static registered with binfmt_misc, with the F flag so
# that the handler works inside a chroot or container without being copied into it.
ensure_binfmt() {
  local arch="$1" qarch
  [ "$arch" = "$(host_deb_arch)" ] && return 0
  case "$arch" in arm64) qarch=aarch64 ;; amd64) qarch=x86_64 ;; *) rootfs_die "no qemu mapping for $arch" ;; esac
  command -v "qemu-$qarch-static" >/dev/null || rootfs_die "qemu-$qarch-static is missing (apt-get install qemu-user-static)"
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || rootfs_die "cannot mount binfmt_misc"
  fi
  if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qarch" ]; then
    local conf="/usr/lib/binfmt.d/qemu-$qarch.conf"
    [ -r "$conf" ] || rootfs_die "$conf is missing (apt-get install qemu-user-static)"
    cat "$conf" > /proc/sys/fs/binfmt_misc/register
    rootfs_say "registered qemu-$qarch with binfmt_misc"
  fi
  grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/qemu-$qarch" \
    || rootfs_die "qemu-$qarch is registered without the F flag: it will not run inside a chroot"
}

# rootfs_exec DIR CMD...: runs CMD inside the root filesystem DIR (not booted) with the host's
# network. systemd-nspawn sets up /proc, /sys, /dev; --register=no --keep-unit because this
# machine's init is not systemd (no machined, no scope units). Extra nspawn options can come in
# ROOTFS_NSPAWN_OPTS (an array).
rootfs_exec() {
  local dir="$1"; shift
  local opts=()
  if declare -p ROOTFS_NSPAWN_OPTS >/dev/null 2>&1; then opts=("${ROOTFS_NSPAWN_OPTS[@]}"); fi
  # SYSTEMD_NSPAWN_LOCK=0: the arm64 tests run beside a module build in the same tree (separate
  # folders under /build; build-deb.sh serialises module builds with flock).
  SYSTEMD_NSPAWN_LOCK=0 systemd-nspawn -q --register=no --keep-unit --resolv-conf=replace-host --timezone=off \
    -E DEBIAN_FRONTEND=noninteractive -E LANG=C.UTF-8 -E HOME=/root \
    "${opts[@]}" -D "$dir" --pipe -- "$@"
}

# rootfs_ensure NAME ARCH PACKAGE...: prints the path of a $ONSHI_SUITE root filesystem for ARCH
# holding PACKAGEs (installed with apt inside it, so that alternatives like logind resolve).
# Reused when present; missing packages are added to an existing one.
rootfs_ensure() {
  local name="$1" arch="$2"; shift 2
  local dir="$ONSHI_ROOTFS_CACHE/$name" debs="$ONSHI_ROOTFS_CACHE/debs-$arch"
  ensure_binfmt "$arch"
  mkdir -p "$ONSHI_ROOTFS_CACHE" "$debs"
  if [ ! -f "$dir/.onshi-rootfs" ]; then
    local mirror; mirror="$(debian_mirror)"
    rootfs_say "debootstrap $ONSHI_SUITE $arch into $dir (mirror $mirror); this takes minutes, once"
    rm -rf "$dir.tmp"
    local t0=$SECONDS
    nice -n 19 debootstrap --arch="$arch" --variant=minbase --cache-dir="$debs" \
      --include=ca-certificates "$ONSHI_SUITE" "$dir.tmp" "$mirror" > "$ONSHI_ROOTFS_CACHE/$name.debootstrap.log" 2>&1 \
      || rootfs_die "debootstrap failed: see $ONSHI_ROOTFS_CACHE/$name.debootstrap.log"
    # Keep what apt downloads later in the same per-arch cache, and no recommends.
    printf 'APT::Install-Recommends "false";\n' > "$dir.tmp/etc/apt/apt.conf.d/90onshi-no-recommends"
    echo "onshi-test" > "$dir.tmp/etc/hostname"
    : > "$dir.tmp/.onshi-rootfs"
    mv "$dir.tmp" "$dir"
    rootfs_say "debootstrap took $((SECONDS - t0)) s"
  fi
  local missing=() p
  for p in "$@"; do grep -qxF "$p" "$dir/.onshi-rootfs" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    rootfs_say "installing in $name: ${missing[*]}"
    local ROOTFS_NSPAWN_OPTS=(--bind="$debs:/var/cache/apt/archives")
    rootfs_exec "$dir" sh -c 'apt-get update -qq && nice -n 19 apt-get install -y -qq "$@" >/dev/null' sh "${missing[@]}" \
      || rootfs_die "apt-get install ${missing[*]} failed in $dir"
    printf '%s\n' "${missing[@]}" >> "$dir/.onshi-rootfs"
  fi
  echo "$dir"
}

# The npm settings and CA certificates of this machine, which a root filesystem does not inherit:
# ~/.npmrc (registry, proxy/CA settings), the global npmrc, and any local CA certificates.
rootfs_copy_npm_config() {
  local dir="$1"
  [ -f "$HOME/.npmrc" ] && install -m 0600 "$HOME/.npmrc" "$dir/root/.npmrc"
  local global; global="$(npm config get globalconfig 2>/dev/null || true)"
  [ -n "$global" ] && [ -f "$global" ] && install -D -m 0644 "$global" "$dir/etc/npmrc"
  # Local CAs (e.g. a proxy's), once: update-ca-certificates under qemu takes minutes.
  local stamp
  stamp="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-16)"
  if [ "$(cat "$dir/.onshi-ca" 2>/dev/null)" != "$stamp" ]; then
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
    rootfs_exec "$dir" update-ca-certificates >/dev/null
    echo "$stamp" > "$dir/.onshi-ca"
  fi
  return 0
}

# prod_deps_hash DIR: names the production node_modules of DIR's package.json and lockfile — its
# "dependencies" and the lockfile's non-dev entries — so that a change of dev tools (a linter, a
# test runner) does not rebuild the native modules (minutes under qemu).
prod_deps_hash() {
  node -e '
    const fs = require("fs"); const dir = process.argv[1];
    const pkg = JSON.parse(fs.readFileSync(dir + "/package.json", "utf8"));
    const lock = JSON.parse(fs.readFileSync(dir + "/package-lock.json", "utf8"));
    const prod = Object.entries(lock.packages ?? {}).filter(([p, e]) => p !== "" && !e.dev).map(([p, e]) => [p, e.version, e.integrity ?? ""]).sort();
    process.stdout.write(require("crypto").createHash("sha256").update(JSON.stringify([pkg.dependencies, prod])).digest("hex").slice(0, 16) + "\n");
  ' "$1"
}
