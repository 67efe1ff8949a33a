#!/usr/bin/env bash
# arm64 (the Raspberry Pi) on this x86_64 machine, under qemu-user: in a Debian 13 arm64 root
# filesystem (scripts/lib/rootfs.sh; this machine's npm settings and CA certificates copied in)
#   1. the arm64 package: scripts/build-deb.sh arm64 (native modules compiled under emulation);
#   2. the unit tests (test/unit) with the dev dependencies installed there by npm ci, and the
#      native modules of step 1 (same lockfile);
#   3. the daemon from the package's own files (dpkg-deb -x) reaching READY in front of the
#      central simulator (`onshi sandbox`), and one check through its API.
# Ends with "arm64-test: N passed, N failed"; times go to test-artifacts/arm64/timings.txt.
#   scripts/test-arm64.sh [--skip-unit] [TAP_ARGS...]   (default: the arm64-sensitive unit tests, below)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/rootfs.sh
. "$HERE/scripts/lib/rootfs.sh"
ART="${ONSHI_ARM64_ART:-$HERE/test-artifacts/arm64}"   # ONSHI_ARM64_ART: another folder, for a second run beside one
ARCH=arm64
UNIT=1
if [ "${1:-}" = --skip-unit ]; then UNIT=0; shift; fi
# By default the unit tests that exercise what differs on arm64: the native modules (better-sqlite3:
# the store, outbox, audit chain, migrations; smartcard: the reader session), the crypto (AES-GCM at
# rest, the TLS identity), the config schema and the XML codec. Under qemu one test file costs
# minutes (tap's own start took 260 s on this shared 2-core machine), so all 67 files
# (`scripts/test-arm64.sh test/unit`) take hours here; on a real Pi they take what they take on x86.
TAP_ARGS=("$@")
if [ ${#TAP_ARGS[@]} -eq 0 ]; then
  TAP_ARGS=(test/unit/cache-store.test.ts test/unit/cache-outbox.test.ts test/unit/cache-audit.test.ts
    test/unit/cache-migrations.test.ts test/unit/cache-crypto.test.ts test/unit/reader-session.test.ts
    test/unit/reader-apdu.test.ts test/unit/tls-identity.test.ts test/unit/config.test.ts test/unit/oqs-xml.test.ts)
fi
[ "$(id -u)" -eq 0 ] || { echo "test-arm64: run as root" >&2; exit 1; }
mkdir -p "$ART"; : > "$ART/timings.txt"; : > "$ART/results.txt"
PASS=0 FAIL=0 T_ALL=$SECONDS
log() { printf '%s\n' "$*" | tee -a "$ART/results.txt" >&2; }
ok() { PASS=$((PASS + 1)); log "ok $((PASS + FAIL)) - $*"; }
notok() { FAIL=$((FAIL + 1)); log "not ok $((PASS + FAIL)) - $*"; }
timing() { printf '%-52s %6d s\n' "$1" "$2" | tee -a "$ART/timings.txt" >&2; }
finish() { timing total $((SECONDS - T_ALL)); echo "arm64-test: $PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; }

LOCKHASH="$(sha256sum < "$HERE/package-lock.json" | cut -c1-16)"                       # all dependencies (dev too): npm ci installs the lockfile
PRODHASH="$(prod_deps_hash "$HERE")"                                                      # build-deb.sh's module cache
ROOTFS="$(rootfs_ensure "build-$ONSHI_SUITE-$ARCH" "$ARCH" nodejs npm g++ make python3 libpcsclite-dev dpkg-dev)"
rootfs_copy_npm_config "$ROOTFS"
r() { rootfs_exec "$ROOTFS" "$@"; }
log "# $(r uname -m) under $(basename "$(readlink -f /usr/libexec/qemu-binfmt/aarch64-binfmt-P 2>/dev/null || echo qemu-aarch64-static)"); $(r node --version) $(r sh -c 'npm --version') (Debian 13's nodejs and npm)"

# --- 1. the package ---------------------------------------------------------------------------------
t=$SECONDS
DEB="$("$HERE/scripts/build-deb.sh" arm64 --no-build 2> "$ART/build-deb.log" | tail -n1)" || { notok "build-deb.sh arm64 failed (see $ART/build-deb.log)"; finish; exit 1; }
timing "build-deb.sh arm64 (this run; the module build is cached)" $((SECONDS - t))
MODS="$ONSHI_ROOTFS_CACHE/npm-prod-$ARCH-$PRODHASH"
timing "npm ci --omit=dev under qemu (+ modules), when built" "$(cat "$MODS/.seconds")"
for d in "$ONSHI_ROOTFS_CACHE/native-$ARCH"/*/; do
  [ -f "$d/.seconds" ] && timing "compile $(basename "$d") under qemu, when built" "$(cat "$d/.seconds")"
done
if [ -s "$DEB" ]; then ok "the arm64 package was built: $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"; else notok "no arm64 package"; fi
for f in better-sqlite3/build/Release/better_sqlite3.node smartcard/build/Release/smartcard_napi.node; do
  if readelf -h "$MODS/node_modules/$f" | grep -q 'Machine:.*AArch64'; then ok "$f is an AArch64 ELF"; else notok "$f is not AArch64"; fi
done

# --- 2. the unit tests -------------------------------------------------------------------------------
if [ "$UNIT" -eq 1 ]; then
  SRC="$ROOTFS/build/onshi-src"
  rm -rf "$SRC"; mkdir -p "$SRC"
  git -C "$HERE" archive HEAD | tar -x -C "$SRC"
  DEV="$ROOTFS/build/npm-dev-$LOCKHASH"
  if [ ! -f "$DEV/.complete" ]; then
    rm -rf "$DEV"; mkdir -p "$DEV"; cp "$HERE/package.json" "$HERE/package-lock.json" "$DEV/"
    t=$SECONDS
    # No install scripts: the native modules come compiled from step 1 (same lockfile, same versions).
    r sh -c "cd /build/npm-dev-$LOCKHASH && nice -n 19 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error" > "$ART/npm-dev.log" 2>&1 \
      || { notok "npm ci (dev) under qemu failed (see $ART/npm-dev.log)"; finish; exit 1; }
    echo $((SECONDS - t)) > "$DEV/.seconds"; touch "$DEV/.complete"
  fi
  # Earlier lockfiles' trees (hundreds of MB each) go.
  find "$ROOTFS/build" -maxdepth 1 -name 'npm-dev-*' ! -name "npm-dev-$LOCKHASH" -exec rm -rf {} +
  timing "npm ci --ignore-scripts (dev dependencies) under qemu" "$(cat "$DEV/.seconds")"
  for m in better-sqlite3 smartcard; do rm -rf "$DEV/node_modules/$m/build"; cp -R "$MODS/node_modules/$m/build" "$DEV/node_modules/$m/build"; done
  ln -sfn "../npm-dev-$LOCKHASH/node_modules" "$SRC/node_modules"
  t=$SECONDS
  set +e
  r sh -c "cd /build/onshi-src && nice -n 19 npx --no-install tsc -p tsconfig.json" > "$ART/tsc.log" 2>&1
  rc=$?
  set -e
  timing "tsc -p tsconfig.json under qemu" $((SECONDS - t))
  if [ $rc -eq 0 ]; then ok "the TypeScript build under arm64"; else notok "tsc under arm64 (see $ART/tsc.log)"; fi
  t=$SECONDS
  set +e
  # Timeouts ×15: the same tests run 10-30 times slower under emulation.
  r sh -c "cd /build/onshi-src && nice -n 19 npx --no-install tap --jobs=2 --timeout=1800 --reporter=tap $(printf '%q ' "${TAP_ARGS[@]}")" > "$ART/tap.txt" 2>&1
  rc=$?
  set -e
  timing "tap ${TAP_ARGS[*]} under qemu" $((SECONDS - t))
  passed=$(grep -c '^ok ' "$ART/tap.txt" || true); failed=$(grep -c '^not ok ' "$ART/tap.txt" || true)
  log "# unit test files: $passed passed, $failed failed (tap exit $rc); $(grep -E '^# (pass|fail|skip|todo)' "$ART/tap.txt" | tr '\n' ' ')"
  grep -E '^not ok ' "$ART/tap.txt" | sed 's/^/#   /' | tee -a "$ART/results.txt" >&2 || true
  if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then ok "unit tests pass on arm64 ($passed files)"; else notok "unit tests on arm64: $failed of $((passed + failed)) files failed (see $ART/tap.txt)"; fi
fi

# --- 3. READY from the package's files -------------------------------------------------------------------
PKGROOT="$ROOTFS/build/deb-root"
rm -rf "$PKGROOT"; mkdir -p "$PKGROOT"
dpkg-deb -x "$DEB" "$PKGROOT"
rm -rf "$ROOTFS/build/sandbox"
t=$SECONDS
set +e
r sh -c '
  cd /build && ONSHI_SANDBOX_READY_MS=900000 node /build/deb-root/usr/lib/onshi-gateway/bin/onshi.js sandbox --state /build/sandbox --port-base 0 > /build/sandbox.out 2> /build/sandbox.err &
  pid=$!
  for i in $(seq 1 900); do grep -q "^READY " /build/sandbox.out && break; kill -0 $pid 2>/dev/null || break; sleep 1; done
  echo "ready-after ${i}"
  line=$(grep "^READY " /build/sandbox.out) || { kill $pid; exit 1; }
  ws=$(echo "$line" | tr " " "\n" | sed -n "s/^ws=//p"); token=$(echo "$line" | tr " " "\n" | sed -n "s/^token=//p")
  ONSHI_WS=$ws ONSHI_TOKEN=$token node /build/deb-root/usr/lib/onshi-gateway/bin/onshi.js inquiry --numbers 06139992,テスト,12345,00 --birthdate 19800401 > /build/inquiry.json
  rc=$?
  kill -INT $pid; wait $pid
  exit $rc' > "$ART/ready.log" 2>&1
rc=$?
set -e
cp "$ROOTFS/build/sandbox.out" "$ROOTFS/build/sandbox.err" "$ART/" 2>/dev/null || true
cp "$ROOTFS/build/inquiry.json" "$ART/" 2>/dev/null || true
timing "sandbox (simulator + daemon) start to READY under qemu" "$(sed -n 's/^ready-after //p' "$ART/ready.log")"
if grep -q '^READY ' "$ART/sandbox.out" 2>/dev/null; then ok "the packaged arm64 daemon reached READY in front of the simulator"; else notok "no READY on arm64 (see $ART/sandbox.err)"; fi
if [ "$rc" -eq 0 ] && grep -q '"source": "central"' "$ART/inquiry.json" 2>/dev/null; then ok "a check through its API answered from central (cache written by the arm64 better-sqlite3)"; else notok "the arm64 check failed (see $ART/ready.log)"; fi
finish
