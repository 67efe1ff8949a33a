#!/usr/bin/env bash
# Builds the Debian package onshi-gateway_<version>_<arch>.deb with dpkg-deb (no debhelper):
#   /usr/lib/onshi-gateway/            bin/, dist/ (the TypeScript build), package.json, the production
#                                      node_modules with the native modules (better-sqlite3,
#                                      smartcard) compiled for <arch>, config.default.json
#   /usr/bin/onshi                     the command line (a link to bin/onshi.js)
#   /usr/lib/systemd/system/, /usr/lib/sysusers.d/, /usr/lib/tmpfiles.d/, /usr/share/polkit-1/rules.d/
#   /usr/share/doc/onshi-gateway/      operations.md, install.md, copyright, changelog
# and the maintainer scripts in packaging/deb/. The native modules are compiled inside a Debian 13
# root filesystem of <arch> (scripts/lib/rootfs.sh; arm64 under qemu-user), with Debian's own
# nodejs and npm, so they match the Node.js the package depends on; the result is cached by the
# lockfile's hash. Needs root (debootstrap, systemd-nspawn). Runs lintian on the result.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/build-deb.sh [amd64|arm64] [--version V] [--src DIR] [--out DIR] [--no-build] [--no-lintian]

  amd64|arm64   the architecture (default: this machine's)
  --version V   the package version (default: package.json's "version")
  --src DIR     the checkout to package (default: this one); its node_modules must hold the dev
                dependencies for the TypeScript build unless --no-build
  --out DIR     where the .deb goes (default: DIR/dist-deb of the checkout)
  --no-build    package the dist/ already built in the checkout
  --no-lintian  skip lintian
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/rootfs.sh
. "$HERE/scripts/lib/rootfs.sh"
PKG=onshi-gateway
PACKAGING="$HERE/packaging/deb"
APP=/usr/lib/onshi-gateway
MAINTAINER="${ONSHI_DEB_MAINTAINER:-onshi-gateway maintainers <onshi-gateway@localhost>}"

say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

ARCH="" VERSION="" SRC="$HERE" OUT="" BUILD=1 LINTIAN=1
while [ $# -gt 0 ]; do
  case "$1" in
    amd64|arm64) ARCH="$1"; shift ;;
    --version) VERSION="$2"; shift 2 ;;
    --src) SRC="$(realpath "$2")"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-lintian) LINTIAN=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
ARCH="${ARCH:-$(host_deb_arch)}"
case "$ARCH" in amd64|arm64) ;; *) die "unsupported architecture $ARCH (amd64, arm64)" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and systemd-nspawn build the native modules)"
VERSION="${VERSION:-$(node -p 'require(process.argv[1]).version' "$SRC/package.json")}"
OUT="$(realpath -m "${OUT:-$SRC/dist-deb}")"
mkdir -p "$OUT"
T0=$SECONDS

# --- 1. the JavaScript build ------------------------------------------------------------------------
if [ "$BUILD" -eq 1 ]; then
  say "npm run build (tsc, then the daemon's bundle) in $SRC"
  (cd "$SRC" && rm -rf dist && nice -n 19 npm run --silent build)
fi
[ -f "$SRC/bin/onshi.js" ] && [ -d "$SRC/dist" ] || die "no build in $SRC (bin/onshi.js, dist/)"

# --- 2. production node_modules for ARCH, compiled in a Debian 13 rootfs of ARCH --------------------
LOCKHASH="$(prod_deps_hash "$SRC")"
MODS="$ONSHI_ROOTFS_CACHE/npm-prod-$ARCH-$LOCKHASH"
BUILD_ROOTFS_PACKAGES=(nodejs npm g++ make python3 libpcsclite-dev dpkg-dev)
# One build of a lockfile's modules at a time (test-arm64.sh and test-system.sh call this script too).
mkdir -p "$ONSHI_ROOTFS_CACHE"
exec 9> "$MODS.lock"
flock 9
# The native modules themselves are compiled once per architecture, module version and Node.js
# version, not per lockfile: under qemu better-sqlite3 (the SQLite amalgamation) takes well over an
# hour, and a change of a pure-JavaScript dependency must not pay for it again. npm ci runs without
# install scripts; each module with a binding.gyp then gets its build/ from
# $ONSHI_ROOTFS_CACHE/native-ARCH/NAME-VERSION-nodeNODEVERSION, or is compiled there (npm rebuild)
# and kept.
NATIVE="$ONSHI_ROOTFS_CACHE/native-$ARCH"
if [ ! -f "$MODS/.complete" ]; then
  rootfs="$(rootfs_ensure "build-$ONSHI_SUITE-$ARCH" "$ARCH" "${BUILD_ROOTFS_PACKAGES[@]}")"
  rootfs_copy_npm_config "$rootfs"
  work="$rootfs/build/prod-$LOCKHASH"
  rm -rf "$work"; mkdir -p "$work" "$NATIVE"
  cp "$SRC/package.json" "$SRC/package-lock.json" "$work/"
  say "npm ci --omit=dev --ignore-scripts inside $rootfs"
  t=$SECONDS
  rootfs_exec "$rootfs" sh -c "cd /build/prod-$LOCKHASH && nice -n 19 npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error" >&2 \
    || die "npm ci failed inside $rootfs"
  node_version="$(rootfs_exec "$rootfs" node --version)"
  say "npm ci for $ARCH took $((SECONDS - t)) s (Node.js $node_version in the build root)"
  compiled=0
  while IFS= read -r gyp; do
    m="$(dirname "$gyp")"; name="$(node -p 'require(process.argv[1]).name' "$work/$m/package.json")"
    key="$name-$(node -p 'require(process.argv[1]).version' "$work/$m/package.json")-node$node_version"
    if [ ! -f "$NATIVE/$key/.complete" ]; then
      say "compiling $name for $ARCH (npm rebuild inside $rootfs)"
      tc=$SECONDS
      rootfs_exec "$rootfs" sh -c "cd /build/prod-$LOCKHASH && nice -n 19 npm rebuild --foreground-scripts --loglevel=error $name" >&2 \
        || die "npm rebuild $name failed inside $rootfs"
      [ -d "$work/$m/build/Release" ] || die "$name has no build/Release after npm rebuild"
      rm -rf "${NATIVE:?}/$key"; mkdir -p "$NATIVE/$key"
      cp -R "$work/$m/build" "$NATIVE/$key/build"
      echo "$((SECONDS - tc))" > "$NATIVE/$key/.seconds"
      touch "$NATIVE/$key/.complete"
      compiled=$((compiled + $(cat "$NATIVE/$key/.seconds")))
      say "$name for $ARCH compiled in $(cat "$NATIVE/$key/.seconds") s"
    else
      say "$name for $ARCH: the compiled module from $NATIVE/$key (compiled in $(cat "$NATIVE/$key/.seconds" 2>/dev/null || echo ?) s)"
      rm -rf "$work/$m/build"; cp -R "$NATIVE/$key/build" "$work/$m/build"
    fi
  done < <(cd "$work" && find node_modules -maxdepth 3 -name binding.gyp | LC_ALL=C sort)
  rm -rf "$MODS"; mkdir -p "$MODS"
  mv "$work/node_modules" "$MODS/node_modules"
  rm -rf "$work"
  echo "$((SECONDS - t))" > "$MODS/.seconds"
  touch "$MODS/.complete"
fi
# Strip the native modules with the build root's own (native) binutils: the host's strip does not
# know aarch64.
if [ ! -f "$MODS/.stripped" ]; then
  rootfs="$(rootfs_ensure "build-$ONSHI_SUITE-$ARCH" "$ARCH" "${BUILD_ROOTFS_PACKAGES[@]}")"
  # shellcheck disable=SC2034 # read by rootfs_exec (scripts/lib/rootfs.sh)
  ROOTFS_NSPAWN_OPTS=(--bind="$MODS:/mods")
  rootfs_exec "$rootfs" sh -c "find /mods/node_modules -name '*.node' -exec strip --strip-unneeded --remove-section=.comment {} +" \
    || die "strip failed in $rootfs"
  unset ROOTFS_NSPAWN_OPTS
  touch "$MODS/.stripped"
fi
flock -u 9

# --- 3. the tree ---------------------------------------------------------------------------------------
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/onshi-deb.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
R="$STAGE/root"
mkdir -p "$R$APP" "$R/usr/bin" "$R/usr/lib/systemd/system" "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d" \
  "$R/usr/share/polkit-1/rules.d" "$R/usr/share/doc/$PKG" "$R/usr/share/man/man1" "$R/usr/share/lintian/overrides" "$R/DEBIAN"
# timestamps kept: bin/onshi.js runs dist/bundle/ only when it is not older than dist/
cp -R --preserve=timestamps "$SRC/bin" "$SRC/dist" "$R$APP/"
# Type declarations are for a TypeScript consumer of the library, not for the appliance.
find "$R$APP/dist" \( -name '*.d.ts' -o -name '*.d.ts.map' \) -delete
# package.json: Node reads "type": "module" from it; the scripts and dev entries are not needed.
node -e '
  const p = require(process.argv[1]);
  const keep = { name: p.name, version: p.version, description: p.description, license: p.license, private: true, type: p.type, engines: p.engines, bin: p.bin, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(keep, null, 2) + "\n");' "$SRC/package.json" > "$R$APP/package.json"
cp -R "$MODS/node_modules" "$R$APP/"
# What a compiled module keeps besides its .node file: objects, sources, the SQLite amalgamation,
# makefiles. Only build/Release/*.node is loaded (through the "bindings" package).
for m in better-sqlite3 smartcard; do
  d="$R$APP/node_modules/$m"
  [ -d "$d/build/Release" ] || die "$m has no build/Release in the $ARCH node_modules"
  find "$d/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$d/build/Release" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
  rm -rf "$d/deps" "$d/src" "$d/binding.gyp"
done
# better-sqlite3's test extension is for its own test suite.
rm -f "$R$APP/node_modules/better-sqlite3/build/Release/test_extension.node"
# The ELF files must be of ARCH: a module silently built for the host would only fail on the Pi.
want_machine=$([ "$ARCH" = arm64 ] && echo AArch64 || echo X86-64)
mapfile -t ELFS < <(find "$R$APP/node_modules" -type f -name '*.node')
[ ${#ELFS[@]} -ge 2 ] || die "expected the native modules' .node files, found ${#ELFS[@]}"
for f in "${ELFS[@]}"; do
  readelf -h "$f" | grep -q "Machine:.*$want_machine" || die "$f is not an $ARCH ELF file"
done
# npm leaves these behind; none is used at run time.
find "$R$APP/node_modules" \( -name '.package-lock.json' -o -name '.bin' -o -name '*.md' -o -name '.npmignore' \
  -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.github' -o -name '.gitattributes' -o -name '.gitignore' \) -prune -exec rm -rf {} +
find "$R$APP/node_modules" -type d -empty -delete

# The config a first install writes to /etc/onshi-gateway/config.json: every setting with its
# default, from the gateway's own schema (found by what it exports, wherever the build puts it).
config_module="$(grep -rlE '^export (async )?function validateConfig\b' "$R$APP/dist" --include='*.js' | head -n1)"
[ -n "$config_module" ] || die "no module in dist/ exports validateConfig"
(cd "$SRC" && node --input-type=module -e '
  const { validateConfig } = await import(process.argv[1]);
  process.stdout.write(JSON.stringify(validateConfig({ stateDir: "/var/lib/onshi-gateway" }), null, 2) + "\n");
' "$(realpath "$config_module")") > "$R$APP/config.default.json"
# config.js imports ajv: resolved from the package's own node_modules when run there (checked below).

ln -s "../lib/onshi-gateway/bin/onshi.js" "$R/usr/bin/onshi"
# The unit as scripts/install.sh ships it, with the package's paths.
sed -e "s#/opt/onshi-gateway/bin/onshi.js#$APP/bin/onshi.js#" \
    -e "s#^Documentation=.*#Documentation=file:///usr/share/doc/$PKG/operations.md file:///usr/share/doc/$PKG/install.md man:onshi(1)#" \
    -e "s#^\# Installed by scripts/install.sh;#\# Installed by the onshi-gateway package (or scripts/install.sh);#" \
    "$SRC/systemd/onshi-gateway.service" > "$R/usr/lib/systemd/system/onshi-gateway.service"
grep -q "^ExecStart=.* $APP/bin/onshi.js start" "$R/usr/lib/systemd/system/onshi-gateway.service" || die "the unit's ExecStart does not run $APP/bin/onshi.js"
! grep -q /opt/ "$R/usr/lib/systemd/system/onshi-gateway.service" || die "the unit still names /opt"
cp "$SRC/systemd/onshi-gateway.sysusers" "$R/usr/lib/sysusers.d/onshi-gateway.conf"
cp "$SRC/systemd/onshi-gateway.tmpfiles" "$R/usr/lib/tmpfiles.d/onshi-gateway.conf"
sed 's#Installed to /etc/polkit-1/rules.d/ by scripts/install.sh.#Installed to /usr/share/polkit-1/rules.d/ by the onshi-gateway package.#' \
  "$SRC/systemd/50-onshi-gateway-pcscd.rules" > "$R/usr/share/polkit-1/rules.d/50-onshi-gateway-pcscd.rules"
for doc in operations.md install.md; do
  [ -f "$SRC/docs/$doc" ] && cp "$SRC/docs/$doc" "$R/usr/share/doc/$PKG/"
done
cp "$PACKAGING/copyright" "$R/usr/share/doc/$PKG/copyright"
{
  echo "$PKG ($VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo 'a checkout') by scripts/build-deb.sh."
  echo
  echo " -- $MAINTAINER  $(date -R -d "@$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n > "$R/usr/share/doc/$PKG/changelog.gz"
gzip -9n < "$PACKAGING/onshi.1" > "$R/usr/share/man/man1/onshi.1.gz"
cp "$PACKAGING/lintian-overrides" "$R/usr/share/lintian/overrides/$PKG"
for s in postinst prerm postrm; do install -m 0755 "$PACKAGING/$s" "$R/DEBIAN/$s"; done

# Modes: root owns everything (dpkg-deb --root-owner-group); no group/other write.
chmod -R u+rwX,go+rX,go-w "$R"
# Shared objects are not executables; a file is executable exactly when it starts with #!.
find "$R$APP/node_modules" -type f -exec chmod a-x {} +
find "$R$APP/node_modules" -type f \( -name '*.js' -o -name '*.cjs' -o -name '*.mjs' \) -exec sh -c \
  'for f; do [ "$(head -c2 "$f")" = "#!" ] && chmod a+x "$f"; done; true' sh {} +
chmod 0755 "$R$APP/bin/onshi.js"

# --- 4. the control file: shared-library dependencies from dpkg-shlibdeps in the build rootfs --------
SHLIBS_CACHE="$MODS/.shlibs"
if [ ! -s "$SHLIBS_CACHE" ]; then
  rootfs="$(rootfs_ensure "build-$ONSHI_SUITE-$ARCH" "$ARCH" "${BUILD_ROOTFS_PACKAGES[@]}")"
  sl="$rootfs/build/shlibs"; rm -rf "$sl"; mkdir -p "$sl/debian" "$sl/files"
  printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" > "$sl/debian/control"
  args=()
  for f in "${ELFS[@]}"; do cp "$f" "$sl/files/"; args+=("-efiles/$(basename "$f")"); done
  # Symbols that Node.js itself provides (V8, N-API) are found in no library: that is expected.
  rootfs_exec "$rootfs" sh -c "cd /build/shlibs && dpkg-shlibdeps -O --warnings=0 ${args[*]}" > "$sl/out" 2>/dev/null \
    || die "dpkg-shlibdeps failed in $rootfs"
  sed -n 's/^shlibs:Depends=//p' "$sl/out" > "$SHLIBS_CACHE"
  rm -rf "$sl"
fi
SHLIBS="$(cat "$SHLIBS_CACHE")"
[ -n "$SHLIBS" ] || die "dpkg-shlibdeps found no shared-library dependencies"
SIZE="$(du -sk --exclude=DEBIAN "$R" | cut -f1)"
sed -e "s/@VERSION@/$VERSION/" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" \
  "$PACKAGING/control.in" > "$R/DEBIAN/control"
(cd "$R" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$R/DEBIAN/control" "$R/DEBIAN/md5sums"

DEB="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
say "built $DEB ($(du -h "$DEB" | cut -f1), installed size ${SIZE} KiB) in $((SECONDS - T0)) s"

if [ "$LINTIAN" -eq 1 ]; then
  if command -v lintian >/dev/null; then
    say "lintian $DEB"
    # Exit status of lintian: non-zero on an error-level finding not overridden.
    lintian --fail-on error,warning --tag-display-limit 0 "$DEB" >&2 || die "lintian found errors or warnings (see above)"
    say "lintian: no errors or warnings (overrides, each explained: packaging/deb/lintian-overrides)"
  else
    say "lintian is not installed: not checked"
  fi
fi
echo "$DEB"
