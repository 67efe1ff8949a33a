#!/usr/bin/env bash
# Installs onshi-gateway on this machine (Debian 12/13, Raspberry Pi OS; arm64 or x86_64) from this
# checkout: OS packages, the build, /opt/onshi-gateway, the config, the credentials directory, the
# service user, the systemd unit, the pcscd polkit rule. Safe to run again: a second run changes
# nothing and says so. See docs/operations.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/install.sh [--root DIR] [--no-build] [--line ip-vpn|ipsec] [--uninstall [--purge]] [--help]

  (no option)    install or update onshi-gateway from this checkout and start it (as root)
  --line MODE    the closed line: ip-vpn (default; the carrier's router owns the tunnel, nothing
                 of strongSwan is installed) or ipsec (the box terminates IPsec itself: installs
                 strongSwan's charon-systemd and swanctl, and lets user onshi reach charon's VICI
                 socket through the group onshi-vici; see docs/line.md)
  --root DIR     write everything under DIR instead of / (no apt, no user, no systemctl): a scratch
                 tree for CI or for inspecting what an install would write
  --no-build     use the build already in the checkout (node_modules/, dist/) instead of
                 running npm ci + npm run build
  --uninstall    stop and disable the service, remove /opt/onshi-gateway, the unit, the
                 sysusers/tmpfiles entries and the polkit rule; keep /etc/onshi-gateway and
                 /var/lib/onshi-gateway
  --purge        with --uninstall: also remove /etc/onshi-gateway (config, credentials),
                 /var/lib/onshi-gateway (state), /var/log/onshi-gateway and the user onshi
  --help         this text
EOF
}

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_MAJOR_MIN=20
SERVICE=onshi-gateway
SERVICE_USER=onshi

# Where things go (always prefixed with $DEST, which is empty for a real install).
APP=/opt/onshi-gateway
ETC=/etc/onshi-gateway
CREDS=$ETC/credentials
STATE=/var/lib/onshi-gateway
LOGS=/var/log/onshi-gateway
UNIT=/etc/systemd/system/$SERVICE.service
SYSUSERS=/etc/sysusers.d/$SERVICE.conf
TMPFILES=/etc/tmpfiles.d/$SERVICE.conf
POLKIT=/etc/polkit-1/rules.d/50-onshi-gateway-pcscd.rules
# --line ipsec: strongSwan's VICI socket, owned by root and group onshi-vici (mode 0770, as charon
# makes it), in a runtime directory systemd creates for strongswan.service.
VICI_GROUP=onshi-vici
VICI_SOCKET=/run/strongswan/charon.vici
STRONGSWAN_CONF=/etc/strongswan.d/onshi-gateway.conf
STRONGSWAN_DROPIN=/etc/systemd/system/strongswan.service.d/onshi-gateway.conf
VICI_SYSUSERS=/etc/sysusers.d/onshi-gateway-vici.conf
# The clinic provides these (see docs/operations.md); the unit fails with 243/CREDENTIALS without them.
CENTRAL_CREDENTIALS=(central-client.key central-client.pem central-ca.pem)

DEST=""
STAGE=""
MODE=install
PURGE=0
BUILD=1
LINE='ip-vpn'
CHANGES=()
SKIPPED=()

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }
changed() { CHANGES+=("$1"); say "$1"; }
skipped() { SKIPPED+=("$1"); }
at() { printf '%s%s' "$DEST" "$1"; }   # a target path under --root (or / itself)
real() { [ -z "$DEST" ]; }
systemd_running() { [ -d /run/systemd/system ]; }

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) [ $# -ge 2 ] || die "--root needs a directory"; DEST="$2"; shift 2 ;;
      --root=*) DEST="${1#--root=}"; shift ;;
      --no-build) BUILD=0; shift ;;
      --line) [ $# -ge 2 ] || die "--line needs ip-vpn or ipsec"; LINE="$2"; shift 2 ;;
      --line=*) LINE="${1#--line=}"; shift ;;
      --uninstall) MODE=uninstall; shift ;;
      --purge) PURGE=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option $1" ;;
    esac
  done
  [ "$PURGE" -eq 0 ] || [ "$MODE" = uninstall ] || die "--purge only goes with --uninstall"
  case "$LINE" in ip-vpn|ipsec) ;; *) die "--line is ip-vpn or ipsec, not '$LINE'" ;; esac
  if [ -n "$DEST" ]; then
    DEST="$(realpath -m -- "$DEST")"
    [ "$DEST" != / ] || die "--root / is a real install: run without --root"
    mkdir -p "$DEST"
  fi
}

# --- checks ------------------------------------------------------------------------------------

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

check_platform() {
  local arch; arch="$(uname -m)"
  case "$arch" in
    x86_64|aarch64) ;;
    *) if real; then die "unsupported architecture $arch (onshi-gateway supports x86_64 and arm64; on a Raspberry Pi use the 64-bit Raspberry Pi OS)"; fi
       say "note: architecture $arch is not supported on the appliance" ;;
  esac
  if real && [ -r /etc/os-release ]; then
    local id version
    # shellcheck disable=SC1091 # the target's own file
    id="$(. /etc/os-release && echo "${ID:-}")"; version="$(. /etc/os-release && echo "${VERSION_ID:-}")"
    case "$id:$version" in
      debian:12|debian:13|raspbian:12|raspbian:13) ;;
      *) say "warning: tested on Debian 12/13 and Raspberry Pi OS; this is ${id:-unknown} ${version:-}" ;;
    esac
  fi
}

# The unit runs /usr/bin/node, so on a real install that is the node that must be recent enough.
check_node() {
  local guidance="Debian 12 (bookworm) and the Raspberry Pi OS based on it ship Node.js 18, which is too old. The way to Node.js ${NODE_MAJOR_MIN}: Debian 13 (trixie) or Raspberry Pi OS based on Debian 13, then apt-get install nodejs npm (Node.js 20.19). On a Debian 12 machine that must stay, a Node.js ${NODE_MAJOR_MIN}+ that provides /usr/bin/node (e.g. NodeSource's nodejs package) also works for this source install, not for the .deb package (see docs/install.md). Then run this again."
  { command -v node >/dev/null && command -v npm >/dev/null; } || die "Node.js ${NODE_MAJOR_MIN} or later with npm is required. $guidance"
  [ "$(node_major node)" -ge "$NODE_MAJOR_MIN" ] || die "Node.js ${NODE_MAJOR_MIN} or later is required; this is $(node --version). $guidance"
  if real; then
    [ -x /usr/bin/node ] || die "the service runs /usr/bin/node, which does not exist (node found at $(command -v node)). $guidance"
    [ "$(node_major /usr/bin/node)" -ge "$NODE_MAJOR_MIN" ] || die "/usr/bin/node is $(/usr/bin/node --version); the service needs ${NODE_MAJOR_MIN} or later. $guidance"
  fi
}

# --- OS packages (real install only) -------------------------------------------------------------

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_os_packages() {
  # pcscd + libpcsclite1: the card reader stack; polkit: pcscd (when built with polkit) asks it
  # whether user onshi may use the reader. Debian 12+ calls the daemon polkitd (policykit-1 before).
  local polkit=polkitd
  apt-cache show polkitd >/dev/null 2>&1 || polkit=policykit-1
  local wanted=(pcscd libpcsclite1 "$polkit")
  # Building the native modules (smartcard, better-sqlite3) from source.
  [ "$BUILD" -eq 0 ] || wanted+=(libpcsclite-dev g++ make python3)
  # --line ipsec: charon under systemd and swanctl; a kernel without ESP needs userspace ESP
  # (kernel-libipsec, in libcharon-extra-plugins). In ip-vpn mode nothing of strongSwan.
  if [ "$LINE" = ipsec ]; then
    wanted+=(charon-systemd strongswan-swanctl)
    kernel_has_esp || wanted+=(libcharon-extra-plugins)
  fi
  if ! real; then skipped "apt packages (${wanted[*]})"; return 0; fi
  local missing=() p
  for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing OS packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  changed "installed OS packages: ${missing[*]}"
}

# Whether the running kernel does ESP itself (esp4 built in, loaded, or loadable).
kernel_has_esp() {
  [ -d /sys/module/esp4 ] && return 0
  if [ -r /proc/config.gz ] && zgrep -qE '^CONFIG_INET_ESP=[ym]' /proc/config.gz; then return 0; fi
  if [ -r "/boot/config-$(uname -r)" ] && grep -qE '^CONFIG_INET_ESP=[ym]' "/boot/config-$(uname -r)"; then return 0; fi
  modinfo esp4 >/dev/null 2>&1
}

# --- the build and /opt/onshi-gateway --------------------------------------------------------------

build_checkout() {
  if [ "$BUILD" -eq 1 ]; then
    # setup.sh's install_npm_packages runs npm ci only when package-lock.json changed since the
    # last one, so a second install does not rebuild the native modules.
    # (In a subshell: setup.sh brings its own helpers, which must not replace ours.)
    # shellcheck source-path=SCRIPTDIR source=lib/setup.sh
    (. "$SRC/scripts/lib/setup.sh" && install_npm_packages)
    (cd "$SRC" && npm run --silent build)
  fi
  { [ -f "$SRC/dist/cli/index.js" ] && [ -d "$SRC/node_modules" ]; } \
    || die "no build in $SRC (dist/, node_modules/): run without --no-build"
}

# Stages the app next to its destination, prunes the dev dependencies there, and swaps it in only
# when something differs, so that a second run leaves /opt/onshi-gateway untouched.
deploy_app() {
  local dest stage
  dest="$(at "$APP")"
  stage="$(dirname "$dest")/.onshi-gateway.new"
  rm -rf "$stage"
  STAGE="$stage"          # removed by the EXIT trap if we fail half-way
  mkdir -p "$stage/docs"
  # No ownership from the checkout (it may belong to a login user): root owns the installed code.
  cp -R --preserve=mode,timestamps,links "$SRC/bin" "$SRC/dist" \
    "$SRC/package.json" "$SRC/package-lock.json" "$SRC/systemd" "$stage/"
  cp "$SRC/docs/operations.md" "$stage/docs/"
  # Copy only the packages the lockfile does not mark dev-only (a fifth of node_modules), then let
  # npm prune --omit=dev have the last word on what production needs.
  local packages=()
  mapfile -t packages < <(cd "$SRC" && node -e '
    const lock = JSON.parse(require("fs").readFileSync("package-lock.json", "utf8"));
    for (const [path, entry] of Object.entries(lock.packages ?? {}))
      if (/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && !entry.dev && require("fs").existsSync(path)) console.log(path);')
  [ ${#packages[@]} -gt 0 ] || die "no production packages found in $SRC/node_modules: run without --no-build"
  (cd "$SRC" && cp -R --parents --preserve=mode,timestamps,links "${packages[@]}" "$stage/")
  (cd "$stage" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund --loglevel=error >/dev/null)
  rm -f "$stage/node_modules/.onshi-lock.sha256"          # setup.sh's stamp, not part of the app
  find "$stage/node_modules" -mindepth 1 -type d -empty -delete
  chmod -R go-w "$stage"
  if [ -d "$dest" ] && diff -r --no-dereference -q "$stage" "$dest" >/dev/null 2>&1; then
    rm -rf "$stage"
    STAGE=""
    return 0
  fi
  local verb=installed
  if [ -d "$dest" ]; then verb=updated; rm -rf "$dest.old"; mv "$dest" "$dest.old"; fi
  mv "$stage" "$dest"
  STAGE=""
  rm -rf "$dest.old"
  APP_CHANGED=1
  changed "$verb $APP"
}

# --- files -------------------------------------------------------------------------------------

# put_file SRC TARGET MODE: writes TARGET (under $DEST) only when its content differs.
put_file() {
  local src="$1" target="$2" mode="$3" dest
  dest="$(at "$target")"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    fix_mode "$target" "$mode"
    return 0
  fi
  local verb=installed
  [ -e "$dest" ] && verb=updated
  mkdir -p "$(dirname "$dest")"
  install -m "$mode" "$src" "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
  changed "$verb $target"
}

fix_mode() {
  local dest; dest="$(at "$1")"
  if [ "$(stat -c %a "$dest")" != "${2#0}" ]; then chmod "$2" "$dest"; changed "mode $2 on $1"; fi
}

ensure_dir() {
  local dest; dest="$(at "$1")"
  if [ ! -d "$dest" ]; then mkdir -p "$dest"; chmod "$2" "$dest"; changed "created $1"; else fix_mode "$1" "$2"; fi
}

# new_secret TARGET COMMAND...: creates a 0600 secret from COMMAND's output, never replaces one.
new_secret() {
  local target="$1" dest; shift
  dest="$(at "$target")"
  [ -e "$dest" ] && { fix_mode "$target" 0600; return 1; }
  (umask 077 && "$@" > "$dest.tmp" && mv -f "$dest.tmp" "$dest")
  changed "created $target"
}

random_hex() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo; }
random_token() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# The config: never overwritten. A new one holds every setting with its default (written by the
# gateway's own schema, so it is valid by construction) and the appliance's state directory. The
# admin page listens on the clinic LAN address only (never every address: nothing of the box may
# listen on the line), or on loopback when no LAN address is found.
write_config() {
  local dest lan; dest="$(at "$ETC/config.json")"
  [ -e "$dest" ] && return 0
  lan="$(first_ipv4)"; case "$lan" in *[!0-9.]*|"") lan="" ;; esac
  node --input-type=module -e '
    const { validateConfig } = await import(process.argv[1]);
    const lan = process.argv[3];
    const given = { stateDir: process.argv[2], ...(lan ? { admin: { host: lan }, tls: { ips: [lan] } } : {}) };
    process.stdout.write(JSON.stringify(validateConfig(given), null, 2) + "\n");
  ' "$(at "$APP")/dist/core/config.js" "$STATE" "$lan" > "$dest.tmp"
  chmod 0644 "$dest.tmp"
  mv -f "$dest.tmp" "$dest"
  changed "created $ETC/config.json (edit central.url, central.userId, institutionCode)"
}

install_files() {
  put_file "$SRC/systemd/onshi-gateway.service" "$UNIT" 0644
  put_file "$SRC/systemd/onshi-gateway.sysusers" "$SYSUSERS" 0644
  put_file "$SRC/systemd/onshi-gateway.tmpfiles" "$TMPFILES" 0644
  put_file "$SRC/systemd/50-onshi-gateway-pcscd.rules" "$POLKIT" 0644
  local n=${#CHANGES[@]}
  if [ "$LINE" = ipsec ]; then install_ipsec_files; else remove_ipsec_files; fi
  IPSEC_CHANGED=0
  [ ${#CHANGES[@]} -eq "$n" ] || IPSEC_CHANGED=1
  ensure_dir "$ETC" 0755
  ensure_dir "$CREDS" 0700
  ensure_dir "$STATE" 0700
  write_config
  # The cache's at-rest key (AES-256, 64 hex digits): generated here, never leaves the machine.
  new_secret "$CREDS/cache.key" random_hex || true
  if new_secret "$CREDS/admin-initial-secret" random_token; then
    ADMIN_SECRET="$(cat "$(at "$CREDS/admin-initial-secret")")"
  fi
}

# put_text TARGET MODE: put_file with the content on stdin.
put_text() {
  local tmp; tmp="$(mktemp)"
  cat > "$tmp"
  put_file "$tmp" "$1" "$2"
  rm -f "$tmp"
}

# --line ipsec: charon-systemd runs with group onshi-vici (it stays uid 0), so the VICI socket it
# creates is root:onshi-vici 0770, and moves to /run/strongswan (a directory systemd makes for
# the service); swanctl is told where it went. User onshi joins the group: no root for the gateway.
install_ipsec_files() {
  put_text "$STRONGSWAN_CONF" 0644 <<CONF
# Written by onshi-gateway's installer (--line ipsec). The gateway (user onshi, group $VICI_GROUP)
# drives charon through this socket; charon makes it root:$VICI_GROUP, mode 0770.
charon-systemd {
  group = $VICI_GROUP
  plugins {
    vici {
      socket = unix://$VICI_SOCKET
    }
    # Routes into the tunnel: MTU 1040, MSS 1000. TCP then fits a line that silently drops packets
    # over ~1130 bytes (an MTU black hole); OQS messages are small, so it costs nothing.
    kernel-netlink {
      mtu = 1040
      mss = 1000
    }
  }
}
swanctl {
  socket = unix://$VICI_SOCKET
}
CONF
  put_text "$STRONGSWAN_DROPIN" 0644 <<CONF
# Written by onshi-gateway's installer (--line ipsec): the directory of charon's VICI socket.
[Service]
RuntimeDirectory=strongswan
RuntimeDirectoryMode=0755
CONF
  put_text "$VICI_SYSUSERS" 0644 <<CONF
# Written by onshi-gateway's installer (--line ipsec): who may drive charon over VICI.
g $VICI_GROUP -
m $SERVICE_USER $VICI_GROUP
CONF
}

# Removes what install_ipsec_files wrote (an install in ip-vpn mode after one in ipsec mode; --uninstall).
remove_ipsec_files() {
  remove "$STRONGSWAN_CONF"
  remove "$STRONGSWAN_DROPIN"
  remove "$VICI_SYSUSERS"
}

join_vici_group() {
  [ "$LINE" = ipsec ] || return 0
  if ! real; then
    skipped "creating the group $VICI_GROUP and adding $SERVICE_USER to it"
    skipped "systemctl restart strongswan"
    return 0
  fi
  if ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$VICI_GROUP"; then
    if command -v systemd-sysusers >/dev/null; then systemd-sysusers "$VICI_SYSUSERS"
    else
      getent group "$VICI_GROUP" >/dev/null || groupadd --system "$VICI_GROUP"
      usermod -a -G "$VICI_GROUP" "$SERVICE_USER"
    fi
    changed "user $SERVICE_USER may use charon's VICI socket (group $VICI_GROUP)"
  fi
  if systemd_running && [ "$IPSEC_CHANGED" -eq 1 ]; then
    systemctl daemon-reload
    systemctl enable --quiet strongswan.service
    systemctl restart strongswan.service
    changed "restarted strongswan (VICI socket $VICI_SOCKET)"
  fi
}

create_user() {
  if ! real; then skipped "creating the system user $SERVICE_USER"; skipped "chown $STATE to $SERVICE_USER"; return 0; fi
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    if command -v systemd-sysusers >/dev/null; then
      systemd-sysusers "$SYSUSERS"
    else
      useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment onshi-gateway "$SERVICE_USER"
    fi
    changed "created the system user $SERVICE_USER"
  fi
  command -v systemd-tmpfiles >/dev/null && systemd-tmpfiles --create "$TMPFILES"
  if [ "$(stat -c %U:%G "$STATE")" != "$SERVICE_USER:$SERVICE_USER" ]; then
    chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE"
    changed "chown $STATE to $SERVICE_USER"
  fi
}

missing_credentials() {
  local f
  for f in "${CENTRAL_CREDENTIALS[@]}"; do [ -s "$(at "$CREDS/$f")" ] || echo "$f"; done
}

start_service() {
  if ! real; then skipped "systemctl daemon-reload, enable --now $SERVICE"; return 0; fi
  if ! systemd_running; then
    say "systemd is not running (container?): not enabling or starting $SERVICE"
    return 0
  fi
  [ ${#CHANGES[@]} -eq 0 ] || systemctl daemon-reload
  if ! systemctl is-enabled --quiet "$SERVICE"; then systemctl enable --quiet "$SERVICE"; changed "enabled $SERVICE"; fi
  local missing=()
  mapfile -t missing < <(missing_credentials)
  if [ ${#missing[@]} -gt 0 ]; then
    say "not starting $SERVICE yet: put these files in $CREDS (mode 0600, owner root):"
    printf '           %s\n' "${missing[@]}"
    say "then: systemctl start $SERVICE"
    return 0
  fi
  if ! systemctl is-active --quiet "$SERVICE"; then
    systemctl start "$SERVICE"; changed "started $SERVICE"
  elif [ "$APP_CHANGED" -eq 1 ] || [ "$UNIT_CHANGED" -eq 1 ]; then
    systemctl restart "$SERVICE"; changed "restarted $SERVICE (new version)"
  fi
}

first_ipv4() {
  local ip=""
  if command -v ip >/dev/null; then
    ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')"
  fi
  [ -n "$ip" ] || ip="$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -n1 || true)"
  echo "${ip:-<this machine’s address>}"
}

install_main() {
  check_platform
  check_node
  install_os_packages
  build_checkout
  APP_CHANGED=0
  local before=""
  [ -f "$(at "$UNIT")" ] && before="$(cksum < "$(at "$UNIT")")"
  deploy_app
  install_files
  UNIT_CHANGED=0
  [ "$before" = "$(cksum < "$(at "$UNIT")")" ] || UNIT_CHANGED=1
  create_user
  join_vici_group
  # Appliances lose power without warning: get what we wrote onto the SD card before starting.
  if real; then sync; fi
  start_service

  echo
  if [ ${#CHANGES[@]} -eq 0 ]; then say "nothing changed: $SERVICE is already installed as this checkout describes"; fi
  if ! real; then
    say "installed into $DEST; skipped outside a real install:"
    printf '           %s\n' "${SKIPPED[@]}"
  fi
  say "admin page: https://$(first_ipv4):8443/  (log in as admin with the initial secret; the page then asks for a new password)"
  if [ -n "${ADMIN_SECRET:-}" ]; then
    say "initial admin secret: $ADMIN_SECRET  (also in $CREDS/admin-initial-secret, root only)"
  else
    say "initial admin secret: unchanged, in $CREDS/admin-initial-secret (root only)"
  fi
  local missing=()
  mapfile -t missing < <(missing_credentials)
  [ ${#missing[@]} -eq 0 ] || say "still needed from the clinic's certificate set, in $CREDS: ${missing[*]}"
}

# --- uninstall ---------------------------------------------------------------------------------

remove() {
  local dest; dest="$(at "$1")"
  if [ -e "$dest" ] || [ -L "$dest" ]; then rm -rf "$dest"; changed "removed $1"; fi
}

uninstall_main() {
  if real; then
    if systemd_running; then
      systemctl disable --now --quiet "$SERVICE" 2>/dev/null || true
    else
      say "systemd is not running: nothing to stop"
    fi
  else
    skipped "systemctl disable --now $SERVICE"
  fi
  remove "$APP"
  remove "$UNIT"
  remove "$POLKIT"
  remove "$SYSUSERS"
  remove "$TMPFILES"
  remove_ipsec_files
  if real && systemd_running; then systemctl daemon-reload; fi
  if [ "$PURGE" -eq 1 ]; then
    remove "$ETC"
    remove "$STATE"
    remove "$LOGS"
    if real; then
      if getent passwd "$SERVICE_USER" >/dev/null; then userdel "$SERVICE_USER"; changed "removed the user $SERVICE_USER"; fi
    else
      skipped "removing the user $SERVICE_USER"
    fi
  else
    say "kept $ETC (config, credentials) and $STATE (state); --uninstall --purge removes them"
  fi
  [ ${#CHANGES[@]} -gt 0 ] || say "nothing changed: $SERVICE is not installed"
  if ! real && [ ${#SKIPPED[@]} -gt 0 ]; then
    say "skipped outside a real install:"
    printf '           %s\n' "${SKIPPED[@]}"
  fi
}

cleanup() { if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi; }

main() {
  trap cleanup EXIT
  parse_args "$@"
  if real && [ "$(id -u)" -ne 0 ]; then die "run as root (sudo $0 $*), or use --root DIR for a scratch tree"; fi
  if [ "$MODE" = uninstall ]; then uninstall_main; else install_main; fi
}

main "$@"
