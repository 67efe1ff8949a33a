#!/usr/bin/env bash
# The system test: the Debian package on a real systemd (PID 1) in a booted Debian 13 container.
#
#   scripts/test-system.sh [--keep] [--skip-build] [--only-sd]
#
# Builds the package of this checkout (scripts/build-deb.sh) and one of an older commit whose
# database schema is one migration behind (ONSHI_OLD_REF, default 52eb753^ = schema v7), boots a
# fresh copy of a cached Debian 13 root filesystem with `systemd-nspawn --boot` (private network:
# everything below talks to 127.0.0.1 inside the container), and shows, each as an assertion that
# fails the run:
#   - the old package installs, creates the user and the secrets, enables the service;
#   - the central simulator (dist/sim, from the package itself) runs as a transient unit and its
#     certificate set goes in as credentials; the service reaches READY through sd_notify;
#   - the newer package keeps config, credentials and state, restarts the service and migrates the
#     database (user_version 7 -> the package's LATEST_VERSION, a schema_migrations row each);
#   - credentials arrive through LoadCredential (and the service user cannot read their sources);
#   - journald holds the structured fields of the daemon's log lines;
#   - live `systemd-analyze security onshi-gateway.service` <= 2.5;
#   - bytes written to disk per check: live, from the cache during an outage, replay, a batch of
#     200 (/proc/PID/io write_bytes of the daemon and of journald, the database's page counts);
#   - fsync stalled 1-2 s (LD_PRELOAD shim, test/system/slow-fsync.c): no watchdog restart of the
#     healthy daemon, and the API keeps its deadlines;
#   - `systemctl stop` drains in-flight checks; the watchdog restarts a daemon hung with SIGSTOP;
#   - remove keeps config and state; purge removes them.
# Ends with "system-test: N passed, N failed"; exits non-zero on any failure (also under CI).
# Timings and the figures go to test-artifacts/system/. Needs root, debootstrap, systemd-container.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/rootfs.sh
. "$HERE/scripts/lib/rootfs.sh"
ART="$HERE/test-artifacts/system"
OLD_REF="${ONSHI_OLD_REF:-52eb753^}"
ARCH="$(host_deb_arch)"
KEEP=0 BUILD=1 ONLY_SD=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;; --skip-build) BUILD=0 ;; --only-sd) ONLY_SD=1 ;;
    *) echo "usage: scripts/test-system.sh [--keep] [--skip-build] [--only-sd]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "test-system: run as root" >&2; exit 1; }
mkdir -p "$ART"
: > "$ART/results.txt"; : > "$ART/timings.txt"; : > "$ART/figures.txt"

PASS=0 FAIL=0 T_ALL=$SECONDS T_STEP=$SECONDS STEP=""
log() { printf '%s\n' "$*" | tee -a "$ART/results.txt" >&2; }
ok() { PASS=$((PASS + 1)); log "ok $((PASS + FAIL)) - $*"; }
notok() { FAIL=$((FAIL + 1)); log "not ok $((PASS + FAIL)) - $*"; }
check() { local d="$1"; shift; if "$@" >/dev/null; then ok "$d"; else notok "$d"; fi; }
figure() { log "# $*"; printf '%s\n' "$*" >> "$ART/figures.txt"; }
step() {
  [ -z "$STEP" ] || printf '%-44s %5d s\n' "$STEP" "$((SECONDS - T_STEP))" >> "$ART/timings.txt"
  STEP="$1"; T_STEP=$SECONDS; log "# --- $1"
}
finish() {
  step ""
  printf '%-44s %5d s\n' "total" "$((SECONDS - T_ALL))" >> "$ART/timings.txt"
  cat "$ART/timings.txt" >&2
  echo "system-test: $PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
fatal() { notok "$*"; teardown; finish || true; exit 1; }

# --- packages ---------------------------------------------------------------------------------------
step "build the packages"
NEW_VERSION="$(node -p 'require(process.argv[1]).version' "$HERE/package.json")"
OLD_SHA="$(git -C "$HERE" rev-parse --short "$OLD_REF")"
OLD_VERSION="${NEW_VERSION}~pre.$OLD_SHA"
NEW_DEB="$HERE/dist-deb/onshi-gateway_${NEW_VERSION}_${ARCH}.deb"
OLD_DEB="$ART/onshi-gateway_${OLD_VERSION}_${ARCH}.deb"
if [ "$BUILD" -eq 1 ] || [ ! -f "$NEW_DEB" ]; then
  "$HERE/scripts/build-deb.sh" "$ARCH" >/dev/null 2> "$ART/build-new.log" || fatal "build-deb.sh (this checkout) failed: see $ART/build-new.log"
fi
if [ "$ONLY_SD" -eq 0 ] && { [ "$BUILD" -eq 1 ] || [ ! -f "$OLD_DEB" ]; }; then
  OLD_SRC="$ONSHI_ROOTFS_CACHE/src-$OLD_SHA"
  if [ ! -f "$OLD_SRC/dist/.built" ]; then
    rm -rf "$OLD_SRC"; mkdir -p "$OLD_SRC"
    git -C "$HERE" archive "$OLD_REF" | tar -x -C "$OLD_SRC"
    # The TypeScript compiler and types of this checkout build the older tree (same lockfile era).
    ln -s "$HERE/node_modules" "$OLD_SRC/node_modules"
    (cd "$OLD_SRC" && nice -n 19 npx --no-install tsc -p tsconfig.json) > "$ART/build-old.log" 2>&1 || fatal "tsc of $OLD_REF failed: see $ART/build-old.log"
    touch "$OLD_SRC/dist/.built"
  fi
  "$HERE/scripts/build-deb.sh" "$ARCH" --src "$OLD_SRC" --no-build --no-lintian --version "$OLD_VERSION" --out "$ART" >/dev/null 2>> "$ART/build-old.log" \
    || fatal "build-deb.sh ($OLD_REF) failed: see $ART/build-old.log"
fi
check "the package of this checkout was built ($(basename "$NEW_DEB"))" test -s "$NEW_DEB"

# --- the container ------------------------------------------------------------------------------------
step "root filesystem (debootstrap, cached)"
BASE="$(rootfs_ensure "boot-$ONSHI_SUITE-$ARCH" "$ARCH" systemd-sysv dbus libpam-systemd nodejs pcscd polkitd procps iproute2 sqlite3)"
RUN="$ONSHI_ROOTFS_CACHE/run-system-test"
NSPAWN_PID="" LEADER=""
teardown() {
  if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
    c journalctl -b --no-pager -o short-precise > "$ART/journal.txt" 2>/dev/null || true
    c systemctl poweroff >/dev/null 2>&1 || true
  fi
  if [ -n "$NSPAWN_PID" ]; then
    local i; for i in $(seq 1 30); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
    kill "$NSPAWN_PID" 2>/dev/null || true
    wait "$NSPAWN_PID" 2>/dev/null || true
  fi
  NSPAWN_PID="" LEADER=""
  if [ "$KEEP" -eq 0 ]; then rm -rf "$RUN"; fi
}
trap 'teardown' EXIT
# c CMD...: a command inside the running container (all its namespaces, a clean environment).
c() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }
csh() { c sh -c "$1"; }

rm -rf "$RUN"
cp -a "$BASE" "$RUN"
cp "$NEW_DEB" "$RUN/root/new.deb"
[ "$ONLY_SD" -eq 1 ] || cp "$OLD_DEB" "$RUN/root/old.deb"
cp "$HERE/test/system/api-client.mjs" "$RUN/root/api-client.mjs"
gcc -shared -fPIC -O2 -Wall -o "$RUN/usr/local/lib/slow-fsync.so" "$HERE/test/system/slow-fsync.c" -ldl || fatal "cannot build the fsync shim"

step "boot (systemd-nspawn --boot)"
systemd-nspawn -q --register=no --keep-unit --boot --private-network -D "$RUN" --machine=onshi-system-test \
  --console=passive > "$ART/console.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 100); do LEADER="$(pgrep -P "$NSPAWN_PID" -x systemd || true)"; [ -n "$LEADER" ] && break; sleep 0.1; done
[ -n "$LEADER" ] || fatal "the container's systemd did not start (see $ART/console.log)"
state=""
for _ in $(seq 1 120); do state="$(c systemctl is-system-running 2>/dev/null || true)"; case "$state" in running|degraded) break ;; esac; sleep 0.5; done
check "the container booted with systemd as PID 1 (state: $state)" test "$(c cat /proc/1/comm)" = systemd
figure "container boot: $(c systemd-analyze time 2>/dev/null | head -n1)"

ONSHI=/usr/bin/onshi
CONFIG=/etc/onshi-gateway/config.json
CREDS=/etc/onshi-gateway/credentials
DB=/var/lib/onshi-gateway/gateway.db
prop() { c systemctl show -P "$1" onshi-gateway.service; }
main_pid() { prop MainPID; }
sqlite() { c sqlite3 -readonly "$DB" "$1"; }
sim_control() { c node -e 'fetch(process.argv[1], { method: process.argv[2], headers: { "content-type": "application/json" }, body: process.argv[3] || undefined }).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(e.message); process.exit(1); })' "http://127.0.0.1:18444$1" "${2:-GET}" "${3:-}"; }
health() { c node -e 'fetch("http://127.0.0.1:8766/status").then(async (r) => process.stdout.write(await r.text()), (e) => { console.error(e.message); process.exit(1); })'; }
# inquiry N DEADLINE_MS: the CLI check of the simulator's person N (valid ones first); prints
# "exit elapsed_ms source" — source is what the answer says it came from.
PEOPLE=()
inquiry() {
  local p="${PEOPLE[$(($1 % ${#PEOPLE[@]}))]}" deadline="${2:-15000}"
  csh "t0=\$(date +%s%N); out=\$(ONSHI_WS=ws://127.0.0.1:8765/v1 ONSHI_TOKEN=\$(cat /root/token) $ONSHI inquiry $p --deadline $deadline 2>&1); rc=\$?; t1=\$(date +%s%N);
       src=\$(printf '%s' \"\$out\" | node -e 'let s=\"\";process.stdin.on(\"data\",d=>s+=d).on(\"end\",()=>{try{const j=JSON.parse(s);console.log(j.source??\"?\")}catch{console.log(\"error:\"+s.replace(/\\s+/g,\" \").slice(0,120))}})');
       echo \"\$rc \$(( (t1 - t0) / 1000000 )) \$src\""
}
# api COUNT|Ns DEADLINE_MS [PAUSE_MS]: checks over one WebSocket (test/system/api-client.mjs), one
# JSON line each: { i, ms, type, source, code }.
api() { c node /root/api-client.mjs /root/people.txt "$@"; }
wait_active() { local i; for i in $(seq 1 "${1:-60}"); do [ "$(prop ActiveState)" = active ] && return 0; sleep 1; done; return 1; }

if [ "$ONLY_SD" -eq 0 ]; then
  step "install the older package ($OLD_VERSION)"
  c apt-get install -y -q /root/old.deb > "$ART/install-old.log" 2>&1 || fatal "apt-get install old.deb failed (see $ART/install-old.log)"
  INSTALL_DEB=old
else
  step "install the package ($NEW_VERSION)"
  c apt-get install -y -q /root/new.deb > "$ART/install-old.log" 2>&1 || fatal "apt-get install new.deb failed (see $ART/install-old.log)"
  INSTALL_DEB=new
fi
check "postinst created the system user onshi (via systemd-sysusers)" c getent passwd onshi
check "postinst wrote $CONFIG" c test -s "$CONFIG"
check "credentials directory is 0700 root" test "$(c stat -c '%a %U' $CREDS)" = "700 root"
check "postinst made the cache key and the initial admin secret (0600 root)" \
  test "$(c stat -c '%a %U' $CREDS/cache.key $CREDS/admin-initial-secret | sort -u)" = "600 root"
check "postinst printed the initial admin secret" grep -q "initial admin secret: $(c cat $CREDS/admin-initial-secret)" "$ART/install-old.log"
check "the service is enabled" test "$(c systemctl is-enabled onshi-gateway.service)" = enabled
check "the service was not started without the clinic's certificate set" test "$(prop ActiveState)" = inactive
check "postinst named the missing certificate files" grep -q "central-client.key central-client.pem central-ca.pem" "$ART/install-old.log"

step "central simulator as a transient unit; credentials in place"
c systemd-run -q --unit=onshi-sim --property=Restart=no /usr/bin/node /usr/lib/onshi-gateway/bin/onshi.js \
  sim central --state /var/lib/onshi-sim --port 18443 --control-port 18444 >/dev/null
for _ in $(seq 1 60); do sim_control /control/settings >/dev/null 2>&1 && break; sleep 0.5; done
check "the central simulator answers in the container" sim_control /control/settings
csh "install -m 0600 /var/lib/onshi-sim/pki/gateway-client.key $CREDS/central-client.key &&
     install -m 0600 /var/lib/onshi-sim/pki/gateway-client.pem $CREDS/central-client.pem &&
     install -m 0600 /var/lib/onshi-sim/pki/central-ca.pem $CREDS/central-ca.pem &&
     install -m 0644 /var/lib/onshi-sim/pki/jpki-ca.pem /etc/onshi-gateway/jpki-ca.pem" || fatal "cannot copy the simulator's certificate set"
# The clinic's edits: the line's address, the card CA, a quick outage probe (as the sandbox does).
c node -e '
  const fs = require("fs"); const f = process.argv[1]; const c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.central.url = "https://127.0.0.1:18443"; c.reader.jpkiCaFile = "/etc/onshi-gateway/jpki-ca.pem";
  c.outage.probeIntervalMs = 2000; c.outage.failureThreshold = 2;
  fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n");' "$CONFIG"
mapfile -t PEOPLE < <(c node /usr/lib/onshi-gateway/bin/onshi.js sim people --json | c node -e '
  let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
    const rows = JSON.parse(s).sort((a, b) => (a.expectedValidity === "1" ? 0 : 1) - (b.expectedValidity === "1" ? 0 : 1));
    for (const r of rows) console.log(`--numbers ${r.insurerNumber},${r.symbol},${r.number},${r.branch} --birthdate ${r.birthdate}`);
  });')
check "the simulator lists people to check (${#PEOPLE[@]})" test "${#PEOPLE[@]}" -ge 5
printf '%s\n' "${PEOPLE[@]}" > "$RUN/root/people.txt"

step "start ($INSTALL_DEB package)"
t=$SECONDS
c systemctl start onshi-gateway.service || true
check "systemctl start returned with the service active (Type=notify: READY=1 arrived)" test "$(prop ActiveState)" = active
figure "start to READY ($INSTALL_DEB package): $((SECONDS - t)) s"
# A receipt computer's token, made by IT with the CLI as the service user.
c runuser -u onshi -- $ONSHI clients add systemtest --json --config $CONFIG | c node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).token))' > "$RUN/root/token"
check "a client token was made with onshi clients add" grep -q '^onshi_' "$RUN/root/token"
for i in 0 1 2; do r="$(inquiry $i)"; log "# inquiry $i: $r"; done
check "a live check answers through the API" test "$(inquiry 0 | cut -d' ' -f1)" = 0

if [ "$ONLY_SD" -eq 0 ]; then
  check "the older package's database is at schema 7" test "$(sqlite 'PRAGMA user_version')" = 7
  ROWS_BEFORE="$(sqlite 'SELECT COUNT(*) FROM audit_log' 2>/dev/null || sqlite 'SELECT COUNT(*) FROM schema_migrations')"
  step "upgrade to $NEW_VERSION"
  CONF_SUM="$(c sha256sum $CONFIG $CREDS/cache.key $CREDS/admin-initial-secret $CREDS/central-client.key /var/lib/onshi-gateway/clients.json)"
  PID_BEFORE="$(main_pid)"
  t=$SECONDS
  c apt-get install -y -q /root/new.deb > "$ART/install-new.log" 2>&1 || fatal "apt-get install new.deb failed (see $ART/install-new.log)"
  wait_active 30 || true
  figure "upgrade (apt-get install of the newer .deb, restart to READY): $((SECONDS - t)) s"
  check "the installed version is $NEW_VERSION" test "$(c dpkg-query -W -f='${Version}' onshi-gateway)" = "$NEW_VERSION"
  check "the upgrade restarted the service (new main PID) and it is active" test "$(main_pid)" != "$PID_BEFORE" -a "$(prop ActiveState)" = active
  check "config, credentials and client tokens are unchanged by the upgrade" test "$(c sha256sum $CONFIG $CREDS/cache.key $CREDS/admin-initial-secret $CREDS/central-client.key /var/lib/onshi-gateway/clients.json)" = "$CONF_SUM"
  # The schema the newer package migrates to: its own LATEST_VERSION (7 -> 8 when this test was
  # written; each later migration moves it on).
  LATEST="$(c node --input-type=module -e 'const m = await import(process.argv[1]); console.log(m.LATEST_VERSION)' /usr/lib/onshi-gateway/dist/cache/schema.js || echo 0)"
  check "the newer package's latest schema ($LATEST) is past the older one's (7)" test "$LATEST" -gt 7
  check "the database was migrated to schema $LATEST" test "$(sqlite 'PRAGMA user_version')" = "$LATEST"
  check "schema_migrations records each migration 8..$LATEST" test "$(sqlite "SELECT COUNT(DISTINCT version) FROM schema_migrations WHERE version BETWEEN 8 AND $LATEST")" = $((LATEST - 7))
  ROWS_AFTER="$(sqlite 'SELECT COUNT(*) FROM audit_log' 2>/dev/null || sqlite 'SELECT COUNT(*) FROM schema_migrations')"
  check "the state kept its rows ($ROWS_BEFORE before, $ROWS_AFTER after)" test "$ROWS_AFTER" -ge "$ROWS_BEFORE"
  check "the old token still works after the upgrade (state kept)" test "$(inquiry 1 | cut -d' ' -f1)" = 0
fi

step "READY, credentials, journal, sandbox score"
check "Type=notify and the daemon's STATUS= text arrived through sd_notify ($(prop StatusText))" \
  test "$(prop Type)" = notify -a "$(prop StatusText | cut -d' ' -f1)" = serving
check "the watchdog is armed (WatchdogUSec=$(prop WatchdogUSec))" test "$(prop WatchdogUSec)" = 30s
MAIN="$(main_pid)"
check "CREDENTIALS_DIRECTORY is set in the daemon's environment" \
  c sh -c "tr '\\0' '\\n' < /proc/$MAIN/environ | grep -qx 'CREDENTIALS_DIRECTORY=/run/credentials/onshi-gateway.service'"
check "systemd placed the five credentials in /run/credentials/onshi-gateway.service" \
  test "$(c ls /run/credentials/onshi-gateway.service | sort | tr '\n' ' ')" = "admin-initial-secret cache.key central-ca.pem central-client.key central-client.pem "
cannot_read() { ! c runuser -u onshi -- cat "$CREDS/central-client.key" >/dev/null 2>&1 && c runuser -u onshi -- true; }
check "the service user cannot read the credential sources in /etc" cannot_read
check "the config names no key file: the client key came from the credential (mutual TLS up)" \
  test "$(c node -e 'const c=require(process.argv[1]); process.stdout.write(c.central.keyFile + "|" + c.central.certFile)' $CONFIG)" = "|"
c journalctl -u onshi-gateway.service -o json --no-pager > "$ART/journal-unit.json"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const ready = lines.find((e) => { try { return JSON.parse(e.MESSAGE).event === "ready"; } catch { return false; } });
  if (!ready) { console.error("no ready line in the journal"); process.exit(1); }
  const m = JSON.parse(ready.MESSAGE);
  const want = ["level", "message", "event", "timestamp", "wsPort"].filter((k) => !(k in m));
  const meta = ["_SYSTEMD_UNIT", "_PID", "_UID", "PRIORITY", "SYSLOG_IDENTIFIER", "_BOOT_ID"].filter((k) => !(k in ready));
  if (want.length || meta.length || ready._SYSTEMD_UNIT !== "onshi-gateway.service") { console.error("missing", want, meta, ready._SYSTEMD_UNIT); process.exit(1); }
  const json = lines.filter((e) => { try { return typeof JSON.parse(e.MESSAGE).level === "string"; } catch { return false; } }).length;
  const prios = [...new Set(lines.map((e) => e.PRIORITY))].join(",");
  console.log(`${json} of ${lines.length} journal entries of the unit are JSON log lines; PRIORITY values seen: ${prios}; uid ${ready._UID}`);
' "$ART/journal-unit.json" > "$ART/journal-check.txt" 2>&1
check "journald holds the structured log fields (event, level, timestamp; _SYSTEMD_UNIT, _PID, _UID): $(cat "$ART/journal-check.txt")" \
  grep -q 'journal entries' "$ART/journal-check.txt"
check "journald's _UID is the service user's" test "$(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse).find(e=>/"event":"ready"/.test(e.MESSAGE));console.log(l._UID)' "$ART/journal-unit.json")" = "$(c id -u onshi)"
c systemd-analyze security onshi-gateway.service --no-pager > "$ART/security.txt" 2>&1 || true
EXPOSURE="$(sed -nE 's/.*Overall exposure level for onshi-gateway.service: ([0-9.]+).*/\1/p' "$ART/security.txt")"
figure "live systemd-analyze security onshi-gateway.service: ${EXPOSURE:-?}"
check "live systemd-analyze security exposure ${EXPOSURE:-?} <= 2.5" awk -v e="${EXPOSURE:-99}" 'BEGIN { exit !(e <= 2.5) }'

# --- the SD card: bytes written ---------------------------------------------------------------------
step "SD card: bytes written per check"
JOURNALD_PID="$(c systemctl show -P MainPID systemd-journald.service)"
# io PID: write_bytes of a process inside the container (the field is per process, threads included:
# the daemon's SQLite writer is a worker thread of the same process).
io() { c awk '/^write_bytes/ { print $2 }' "/proc/$1/io"; }
pages() { echo "$(sqlite 'PRAGMA page_count') $(c stat -c %s /var/lib/onshi-gateway/gateway.db-wal 2>/dev/null || echo 0)"; }
outbox_depth() { health | c node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.outbox?.depth??-1)})'; }
# measure LABEL N CMD...: runs CMD (which makes N checks), then waits 6 s for writeback.
measure() {
  local label="$1" n="$2"; shift 2
  c sync; sleep 1
  local d0 j0 p0 d1 j1 p1
  MAIN="$(main_pid)"; d0="$(io "$MAIN")"; j0="$(io "$JOURNALD_PID")"; p0="$(pages)"
  "$@"
  c sync; sleep 6
  d1="$(io "$MAIN")"; j1="$(io "$JOURNALD_PID")"; p1="$(pages)"
  local dd=$((d1 - d0)) jj=$((j1 - j0))
  figure "$(printf '%-34s n=%-4s daemon %9d B (%6d B/check)  journald %8d B (%5d B/check)  db pages %s -> %s (page_count, wal bytes)' \
    "$label" "$n" "$dd" "$((dd / n))" "$jj" "$((jj / n))" "$p0" "$p1")"
  printf '%s %s %s %s\n' "$label" "$n" "$dd" "$jj" >> "$ART/sd.tsv"
}
: > "$ART/sd.tsv"
live_checks() { api "$1" 15000 "${2:-0}" >> "$ART/sd-checks.jsonl"; }
: > "$ART/sd-checks.jsonl"
measure "idle 60 s (per minute)" 1 sleep 60
measure "live check (line up), back to back" 40 live_checks 40
# A clinic's pace: a check every minute or two, so each one's dirty pages are written on their own
# (the kernel writes dirty pages back after 30 s); 31 s apart shows that cost.
measure "live check (line up), 31 s apart" 4 live_checks 4 31000
sim_control /control/settings PUT '{"errorRate":1,"errorStatus":503}' >/dev/null || true
c systemctl stop onshi-sim.service
sleep 8
SRC_DOWN="$(inquiry 1 | cut -d' ' -f3)"
figure "source of an answer with the line down: $SRC_DOWN"
measure "outage: answered from the cache" 40 live_checks 40
check "checks during the outage were answered from the cache ($(tail -n 40 "$ART/sd-checks.jsonl" | grep -c '"source":"cache"') of 40)" \
  test "$(tail -n 40 "$ART/sd-checks.jsonl" | grep -c '"source":"cache"')" -ge 20
DEPTH="$(outbox_depth)"
figure "outbox depth after the outage checks: $DEPTH"
c systemd-run -q --unit=onshi-sim2 --property=Restart=no /usr/bin/node /usr/lib/onshi-gateway/bin/onshi.js \
  sim central --state /var/lib/onshi-sim --port 18443 --control-port 18444 >/dev/null
replay_wait() { local i; for i in $(seq 1 90); do [ "$(outbox_depth)" = 0 ] && return 0; sleep 1; done; return 1; }
measure "replay after the line returns" 40 replay_wait
check "the outbox drained after the line returned (depth $(outbox_depth))" test "$(outbox_depth)" = 0
# A batch of 200 (tomorrow's reservations), through the CLI.
c node -e '
  const ppl = process.argv.slice(1); const rows = ["arbitraryId,insurerNumber,symbol,number,branch,birthdate"];
  for (let i = 0; i < 200; i++) { const m = ppl[i % ppl.length].match(/--numbers (\S*) --birthdate (\d+)/); rows.push(`R${i},${m[1]},${m[2]}`); }
  require("fs").writeFileSync("/root/batch.csv", rows.join("\n") + "\n");' -- "${PEOPLE[@]}"
batch_done() { sed -nE 's#.* ([0-9]+)/([0-9]+) entries done.*#\1 \2#p' "$ART/batch-status.txt" | awk '$1 == $2 && $2 == 200 { f = 1 } END { exit !f }'; }
batch_run() {
  local id i
  id="$(csh "ONSHI_WS=ws://127.0.0.1:8765/v1 ONSHI_TOKEN=\$(cat /root/token) $ONSHI batch submit /root/batch.csv --now" | awk '$1 == "batch" && $3 == "accepted:" { print $2 }')"
  echo "$id" > "$ART/batch-id"
  for i in $(seq 1 180); do
    csh "ONSHI_WS=ws://127.0.0.1:8765/v1 ONSHI_TOKEN=\$(cat /root/token) $ONSHI batch status $id" > "$ART/batch-status.txt" 2>&1 || true
    batch_done && return 0
    sleep 2
  done
  return 1
}
measure "batch of 200 (per entry)" 200 batch_run
check "the batch of 200 finished ($(tr '\n' ' ' < "$ART/batch-status.txt" | cut -c1-160))" batch_done
figure "database: $(sqlite 'PRAGMA page_size') B pages, $(sqlite 'PRAGMA page_count') pages, $(sqlite 'PRAGMA freelist_count') free; journal mode $(sqlite 'PRAGMA journal_mode')"
figure "journald storage: $(c sh -c 'test -d /var/log/journal && echo persistent /var/log/journal || echo volatile /run/log/journal')"

if [ "$ONLY_SD" -eq 1 ]; then trap - EXIT; teardown; finish; exit $?; fi

# --- slow storage ------------------------------------------------------------------------------------
step "slow fsync (1-2 s per call)"
c mkdir -p /run/systemd/system/onshi-gateway.service.d
printf '[Service]\nEnvironment=LD_PRELOAD=/usr/local/lib/slow-fsync.so SLOW_FSYNC_MIN_MS=1000 SLOW_FSYNC_MAX_MS=2000\n' \
  | c sh -c 'cat > /run/systemd/system/onshi-gateway.service.d/slow-fsync.conf'
c systemctl daemon-reload
t=$SECONDS
c systemctl restart onshi-gateway.service || true
figure "restart to READY with fsync stalled 1-2 s: $((SECONDS - t)) s"
check "the daemon starts with fsync stalled" test "$(prop ActiveState)" = active
RESTARTS0="$(prop NRestarts)"; SINCE="$(c date '+%Y-%m-%d %H:%M:%S')"
t=$SECONDS
# 80 s of checks (more than 2 watchdog periods): live for 40 s, then from the cache with the line down.
api 40s 5000 > "$ART/slow-fsync-checks.jsonl" || true
c systemctl stop onshi-sim2.service
sleep 8
api 32s 5000 | sed 's/}$/,"outage":true}/' >> "$ART/slow-fsync-checks.jsonl" || true
STALLS="$(c journalctl -u onshi-gateway.service --since "$SINCE" --no-pager -o cat | grep -c '^slow-fsync:' || true)"
SUMMARY="$(node -e '
  const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const part = (xs) => { const ms = xs.map((x) => x.ms).sort((a, b) => a - b); return `${xs.length} checks, ${xs.filter((x) => x.type !== "error").length} answered, median ${ms[ms.length >> 1]} ms, worst ${ms[ms.length - 1]} ms, sources ${[...new Set(xs.map((x) => x.source ?? x.code))].join("/")}`; };
  console.log(`line up: ${part(l.filter((x) => !x.outage))}; line down: ${part(l.filter((x) => x.outage))}`);' "$ART/slow-fsync-checks.jsonl")"
figure "fsync stalled 1-2 s: $STALLS stalls in the run; $SUMMARY"
check "fsync was really stalled during the run ($STALLS stalls)" test "$STALLS" -ge 5
check "no watchdog restart of the healthy daemon (NRestarts $RESTARTS0 -> $(prop NRestarts))" test "$(prop NRestarts)" = "$RESTARTS0" -a "$(prop ActiveState)" = active
no_watchdog_timeout() { c journalctl -u onshi-gateway.service --since "$SINCE" --no-pager > "$ART/slow-fsync-journal.txt" && ! grep -qi 'watchdog timeout' "$ART/slow-fsync-journal.txt"; }
check "no watchdog timeout in the journal" no_watchdog_timeout
# The deadline is kept when every request is answered by then: a result, or (line down, the outage
# path held by several stalled fsyncs) the typed DEADLINE_EXCEEDED at the deadline, never later.
check "every check was answered within its 5 s deadline ($SUMMARY)" \
  node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse); process.exit(l.length >= 10 && l.every((x) => x.ms <= 5100 && (x.type !== "error" || x.code === "DEADLINE_EXCEEDED")) ? 0 : 1)' "$ART/slow-fsync-checks.jsonl"
check "with the line up every check got its answer from central despite the stalls" \
  node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse).filter((x) => !x.outage); process.exit(l.length >= 10 && l.every((x) => x.type !== "error" && x.source === "central") ? 0 : 1)' "$ART/slow-fsync-checks.jsonl"
# A line that hangs (central takes the request and answers nothing in time) on the slow card: a
# check waits for central until its deadline less outage.offlineReserveMs, then answers from the
# cache after the outbox's durable commit, which the slow card holds for its fsyncs.
set_config() { c node -e 'const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); const v = process.argv[2] === "" ? undefined : Number(process.argv[2]); c.outage.offlineReserveMs = v; fs.writeFileSync(process.argv[1], JSON.stringify(c, null, 2) + "\n");' "$CONFIG" "$1"; }
hung_line() {
  c systemd-run -q --unit="onshi-sim-$1" --property=Restart=no /usr/bin/node /usr/lib/onshi-gateway/bin/onshi.js \
    sim central --state /var/lib/onshi-sim --port 18443 --control-port 18444 >/dev/null
  local i
  for i in $(seq 1 60); do sim_control /control/settings >/dev/null 2>&1 && break; sleep 0.5; done
  for i in $(seq 1 40); do api 1 5000 | grep -q '"source":"central"' && break; sleep 1; done
  sim_control /control/settings PUT '{"latencyMs":60000}' >/dev/null
  api 4 5000 > "$ART/hung-line-$1.jsonl" || true
  c systemctl stop "onshi-sim-$1.service"
  figure "line hanging, fsync 1-2 s, deadline 5000 ms, $2: $(node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse); console.log(l.map((x) => `${x.ms} ms ${x.source ?? x.code}`).join(", "))' "$ART/hung-line-$1.jsonl")"
}
hung_line default "offlineReserveMs 1500 (the default)"
set_config 4000
c systemctl restart onshi-gateway.service || true
hung_line reserve4000 "offlineReserveMs 4000"
# With a 4 s reserve the cache path has time for its stalled fsyncs: most checks get the cached
# answer (the default 1500 ms gave one or two of 4 in each run), each within the deadline contract as above.
# Not all four: two 2 s stalls in one durable commit use up the whole reserve, and a loaded machine
# adds to it — that check gets the typed DEADLINE_EXCEEDED at its deadline, which keeps the contract.
check "with outage.offlineReserveMs 4000 a hanging line on the slow card: at least 3 of 4 answered from the cache, each within the deadline contract" \
  node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse); process.exit(l.length === 4 && l.filter((x) => x.source === "cache").length >= 3 && l.every((x) => x.ms <= 5100 && (x.type !== "error" || x.code === "DEADLINE_EXCEEDED")) ? 0 : 1)' "$ART/hung-line-reserve4000.jsonl"
set_config ""
c rm -f /run/systemd/system/onshi-gateway.service.d/slow-fsync.conf
c systemctl daemon-reload
c systemd-run -q --unit=onshi-sim3 --property=Restart=no /usr/bin/node /usr/lib/onshi-gateway/bin/onshi.js \
  sim central --state /var/lib/onshi-sim --port 18443 --control-port 18444 >/dev/null
for _ in $(seq 1 60); do sim_control /control/settings >/dev/null 2>&1 && break; sleep 0.5; done
c systemctl restart onshi-gateway.service || true
wait_active 30 || true

# --- drain on stop ---------------------------------------------------------------------------------------
step "systemctl stop drains in-flight checks"
# The line must be up first (the restart above): a check answered by central.
for _ in $(seq 1 40); do api 1 5000 | grep -q '"source":"central"' && break; sleep 1; done
# 2.5 s at central per check: below the link probe's 3 s timeout, so the line stays up meanwhile.
sim_control /control/settings PUT '{"latencyMs":2500,"errorRate":0}' >/dev/null
searches() { sim_control /control/stats | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).searches))'; }
S0="$(searches)"
DRAIN=()
for i in 0 1 2; do (api 1 15000 0 "$i" > "$ART/drain-$i.txt") & DRAIN+=($!); done
# Stop only once central holds all three (each waits out its 2.5 s there).
for _ in $(seq 1 100); do [ "$(searches)" -ge $((S0 + 3)) ] && break; sleep 0.1; done
check "three checks are in flight at central before the stop" test "$(searches)" -ge $((S0 + 3))
t0=$(date +%s%N)
c systemctl stop onshi-gateway.service
STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
wait "${DRAIN[@]}" || true
figure "systemctl stop with 3 checks in flight (central answering in 2.5 s): ${STOP_MS} ms; $(cat "$ART"/drain-*.txt | tr '\n' ';')"
# Central answers only after its 2.5 s, and all three were held there before SIGTERM: an answer from
# central is proof that the daemon stayed up for it (a daemon that quit at once would have closed
# the sockets: no answer). How long the stop took is a figure, not an assertion (it is the rest of
# the 2.5 s, so it depends on how long the wait for "three at central" took on a loaded machine).
check "all 3 in-flight checks were answered by central across the stop" test "$(cat "$ART"/drain-*.txt | grep -c '"source":"central"')" = 3
check "the stop was clean (Result=$(prop Result), status $(prop ExecMainStatus))" test "$(prop Result)" = success
stop_events() { local j; j="$(c journalctl -u onshi-gateway.service -o cat --no-pager | grep -o '"event":"stop[a-z]*"' | tail -n2 | tr '\n' ' ')"; grep -q 'stopping.*stopped' <<< "$j"; }
check "the journal shows stopping then stopped" stop_events
sim_control /control/settings PUT '{"latencyMs":0}' >/dev/null

# --- the watchdog ------------------------------------------------------------------------------------------
step "watchdog restarts a hung daemon (SIGSTOP)"
c systemctl start onshi-gateway.service || true
PID0="$(main_pid)"; R0="$(prop NRestarts)"
c kill -STOP "$PID0"
t=$SECONDS
for _ in $(seq 1 120); do
  p="$(main_pid)"; [ "$p" != "$PID0" ] && [ "$p" != 0 ] && [ "$(prop ActiveState)" = active ] && break
  sleep 1
done
figure "SIGSTOP to active again (WatchdogSec=30, then SIGABRT, SIGKILL after TimeoutAbortSec, RestartSec=2): $((SECONDS - t)) s"
check "the watchdog restarted the hung daemon (NRestarts $R0 -> $(prop NRestarts), new PID)" test "$(prop NRestarts)" -gt "$R0" -a "$(main_pid)" != "$PID0"
# (grep -q in a pipeline under pipefail: journalctl dies of SIGPIPE at the first match — read it whole.)
watchdog_logged() { local j; j="$(c journalctl -u onshi-gateway.service --no-pager)"; grep -qi 'watchdog timeout' <<< "$j"; }
check "the journal says watchdog timeout" watchdog_logged
check "the restarted daemon answers" test "$(inquiry 2 | cut -d' ' -f1)" = 0

# --- remove and purge -----------------------------------------------------------------------------------------
step "remove, then purge"
c apt-get remove -y -q onshi-gateway > "$ART/remove.log" 2>&1 || notok "apt-get remove failed"
check "remove stopped the service" test "$(c systemctl is-active onshi-gateway.service || true)" != active
check "remove took the code away" c test ! -e /usr/lib/onshi-gateway/bin/onshi.js
check "remove kept the config and credentials" c test -s $CONFIG -a -s $CREDS/central-client.key
check "remove kept the state (database, tokens)" c test -s $DB -a -s /var/lib/onshi-gateway/clients.json
c apt-get purge -y -q onshi-gateway > "$ART/purge.log" 2>&1 || notok "apt-get purge failed"
check "purge removed /etc/onshi-gateway" c test ! -e /etc/onshi-gateway
check "purge removed /var/lib/onshi-gateway" c test ! -e /var/lib/onshi-gateway
not_installed() { local st; st="$(c dpkg-query -W -f='${Status}' onshi-gateway 2>/dev/null || true)"; ! grep -q installed <<< "$st"; }
check "dpkg no longer knows the package" not_installed

trap - EXIT
teardown
finish
