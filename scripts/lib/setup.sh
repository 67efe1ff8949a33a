# shellcheck shell=bash
# Installs whatever is missing on a Debian machine: OS packages (via sudo when not root), the npm
# packages (npm ci, only when package-lock.json changed), and the build. Safe to run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# pcscd + vpcd: the real PC/SC stack with Debian's virtual reader driver; libpcsclite-dev, g++, make
# and python3: building the native modules (smartcard, better-sqlite3) from source; opensc: the
# peer cross-check; iproute2: the vpcd quick-ACK route and each test file's own loopback (util-linux:
# unshare and flock, test/helpers/own-reader.ts); openssl: test certificates and the TLS identity
# cross-check; e2fsprogs: chattr, for the file exchange's crash-window test; systemd: the
# unit checks (systemd-analyze, systemd-sysusers, systemd-tmpfiles; it is not started); chromium:
# the admin page's browser tests (driven by playwright-core, which never downloads a browser);
# fonts-ipafont-gothic: Japanese glyphs in the screenshots those tests keep. strongSwan (charon-systemd,
# swanctl, kernel-libipsec in libcharon-extra-plugins) and nftables: the IPsec lab (docs/line.md).
APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev opensc g++ make python3 iproute2 util-linux e2fsprogs openssl procps systemd chromium fonts-ipafont-gothic shellcheck charon-systemd strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins nftables iputils-ping)
NODE_MAJOR_MIN=20

say() { printf '%s\n' "setup: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*  (install sudo or run as root)"; return 1; fi
}

install_os_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing OS packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_node() {
  command -v node >/dev/null || { say "Node.js ${NODE_MAJOR_MIN} or later is required (Debian 13: apt-get install nodejs npm)"; return 1; }
  local major; major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge "$NODE_MAJOR_MIN" ] || { say "Node.js ${NODE_MAJOR_MIN} or later is required; this is $(node --version)"; return 1; }
}

install_npm_packages() {
  local stamp="$ROOT/node_modules/.onshi-lock.sha256" want
  want="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && [ -f "$ROOT/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ] \
     && [ -f "$ROOT/node_modules/smartcard/build/Release/smartcard_napi.node" ]; then
    return 0
  fi
  # npm ci empties node_modules first; through a symlink that is somebody else's folder.
  if [ -L "$ROOT/node_modules" ]; then
    say "node_modules is a symlink ($(readlink "$ROOT/node_modules")): not running npm ci through it; remove the link to install here"
    return 0
  fi
  say "installing npm packages (npm ci; builds the native modules)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  # tap's runner as installed loads its default plugins, TypeScript (ts-node) among them: ~2 s of
  # CPU per test file on top of tsx. Build it now with package.json's plugin list, so that no run,
  # the first included, starts files with the default set.
  (cd "$ROOT" && npx --no-install tap build >/dev/null)
  echo "$want" > "$stamp"
}

build() {
  # tsc, then the daemon's bundle (scripts/bundle.mjs)
  (cd "$ROOT" && npm run --silent build)
}

# Debian's pcscd unit exits when idle and is socket-activated; in containers and CI there is no
# systemd, so start it in the foreground mode detached. vpcd's slots appear once it runs.
ensure_pcscd() {
  if pgrep -x pcscd >/dev/null; then return 0; fi
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start pcscd.socket pcscd.service 2>/dev/null && return 0
  fi
  say "starting pcscd"
  # The pid goes where the test helper (test/helpers/pcscd.ts) records the pcscd it owns, so the
  # recovery tests may kill and restart this one — and never a pcscd somebody else started.
  local pidfile="${TMPDIR:-/tmp}/onshi-test-pcscd.pid"
  as_root sh -c "nohup pcscd -f >/tmp/onshi-pcscd.log 2>&1 & echo \$! > '$pidfile'"
  local _
  for _ in $(seq 1 50); do
    # Look for the listener; connecting to it would look like a card being inserted.
    if ss -Hltn 'sport = :35963' | grep -q .; then return 0; fi
    sleep 0.1
  done
  say "pcscd did not open the virtual reader port 35963 (see /tmp/onshi-pcscd.log)"
  return 1
}

setup_all() {
  install_os_packages "$@"
  check_node
  install_npm_packages
  build
}
