#!/usr/bin/env bash
# The whole test suite: installs what is missing, type-checks and lints, runs every tap test file
# (several at once; each file that needs pcscd gets a reader of its own, test/helpers/own-reader.ts),
# and ends with the per-file times, slowest first, and one "N passed, N failed" line.
#
#   ./scripts/test.sh                  everything (what CI runs)
#   ./scripts/test.sh FILE|DIR ...     those test files (arguments go to tap)
#   ./scripts/test.sh --quick [PATH..] the inner loop: the unit tests, plus the test files that touch
#                                      PATHs (default: the files changed since `main`, committed or
#                                      not); no type-check, lint or build unless a selected test
#                                      spawns the built daemon
# ONSHI_TEST_JOBS=N sets how many files run at once (default: package.json's tap.jobs).
set -euo pipefail
. "$(dirname "$0")/lib/setup.sh"
cd "$ROOT"

quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi

# Test files that touch the given files: a changed test file itself, and the tests that import a
# changed src/ or test/helpers/ module (directly, or through helpers).
tests_touching() {
  local f base hits
  for f in "$@"; do
    case "$f" in
      test/helpers/*) ;;
      test/*.test.ts) [ -f "$f" ] && echo "$f" ;; # a case pattern's * spans folders too
    esac
    case "$f" in
      src/*.ts | test/helpers/*.ts)
        base="${f%.ts}"
        base="${base#src/}"
        base="${base#test/}"
        hits="$(grep -rlE "from '[./]*/(src/)?${base}\.js'" test --include='*.ts' || true)"
        # A helper used by another helper: './name.js'.
        case "$f" in test/helpers/*) hits+=" $(grep -lE "from '\./${base#helpers/}\.js'" test/helpers/*.ts || true)" ;; esac
        for h in $hits; do
          case "$h" in
            test/helpers/*) tests_touching "$h" ;;
            *) echo "$h" ;;
          esac
        done
        ;;
    esac
  done
}

if [ "$quick" -eq 1 ]; then
  if [ $# -gt 0 ]; then
    changed=("$@")
  else
    base="$(git merge-base HEAD main 2>/dev/null || echo HEAD)"
    mapfile -t changed < <({ git diff --name-only "$base"; git ls-files --others --exclude-standard; } | sort -u)
  fi
  mapfile -t files < <({ ls test/unit/*.test.ts; tests_touching "${changed[@]}"; } | sort -u)
  install_os_packages
  check_node
  install_npm_packages
  # The e2e, fault and browser tests run the built daemon.
  if printf '%s\n' "${files[@]}" | grep -qvE '^test/unit/'; then build; fi
  set -- "${files[@]}"
  echo "test --quick: ${#files[@]} files" >&2
else
  setup_all
  # Type errors fail the run: the tests' loader (esbuild) strips types without checking them.
  npm run --silent typecheck
  # The formatter and the linter decide layout (biome.json); a diff from them fails the run.
  npm run --silent lint
fi

# Without private namespaces (not root, or unshare refused) the reader tests share the host's pcscd
# and take it one at a time (own-reader.ts); a running sandbox would hold its slots.
if ! { [ "$(id -u)" -eq 0 ] && unshare --net --mount --pid --fork --mount-proc true 2>/dev/null; }; then
  ensure_pcscd
  if pgrep -f 'bin/onshi.js sandbox' >/dev/null; then
    echo "test: the sandbox is running (its virtual card occupies pcscd's reader); stop it with Ctrl-C, then run the tests" >&2
    exit 1
  fi
fi

# tap finds .ts test files only through package.json's `include` (no TypeScript plugin: the files
# load through test/helpers/ts-register.mjs): a folder given here becomes its test files.
args=()
for a in "$@"; do
  if [ -d "$a" ]; then
    mapfile -t -O "${#args[@]}" args < <(find "$a" -name '*.test.ts' | sort)
  else
    args+=("$a")
  fi
done
set -- "${args[@]}"

mkdir -p test-artifacts
# The TypeScript of src/ and test/, stripped of its types once for all the run's processes
# (test/helpers/ts-cache.mjs; each test file loads through test/helpers/ts-register.mjs).
node test/helpers/ts-cache.mjs src test
# The store's writer thread, bundled from src/ once for the run (src/cache/spawn-writer.ts): a
# worker booting tsx for itself costs ~150 ms, at every store a test opens.
npx --no-install esbuild src/cache/writer-worker.ts --bundle --platform=node --format=esm --packages=external \
  --sourcemap=inline --log-level=warning --outfile=test-artifacts/writer-worker.mjs
export ONSHI_TEST_WRITER_MODULE="$ROOT/test-artifacts/writer-worker.mjs"
# Each file's CPU seconds, its children's included (test/helpers/own-reader.ts writes them).
export ONSHI_TEST_CPU_LOG="$ROOT/test-artifacts/cpu.txt"
: >"$ONSHI_TEST_CPU_LOG"
jobs=()
if [ -n "${ONSHI_TEST_JOBS:-}" ]; then jobs=(--jobs="$ONSHI_TEST_JOBS"); fi
started=$SECONDS
set +e
npx --no-install tap --reporter=tap "${jobs[@]}" "$@" | tee test-artifacts/tap.txt
status=${PIPESTATUS[0]}
set -e
# Top-level results, one per test file.
passed=$(grep -c '^ok ' test-artifacts/tap.txt || true)
failed=$(grep -c '^not ok ' test-artifacts/tap.txt || true)
echo
# The next slow file is visible: per-file times, slowest first (also in test-artifacts/times.txt).
sed -nE 's/^(not )?ok [0-9]+ - (.+) # time=([0-9.]+)ms.*$/\3 \2 \1/p' test-artifacts/tap.txt |
  sort -rn | awk -v cpufile=test-artifacts/cpu.txt '
    BEGIN { while ((getline line < cpufile) > 0) { split(line, f, " "); cpu[f[2]] = f[1]; total += f[1] } }
    { printf "%7.1f s  %7s  %s%s\n", $1 / 1000, ($2 in cpu ? cpu[$2] " s" : "-"), $2, ($3 == "not" ? "  FAILED" : "") }
    END { printf "%.0f\n", total > "test-artifacts/cpu-total.txt" }' \
  >test-artifacts/times.txt
echo "per-file times, slowest first (wall, then CPU with the file's children):"
head -25 test-artifacts/times.txt
echo "wall time: $((SECONDS - started)) s for $((passed + failed)) files, $(cat test-artifacts/cpu-total.txt) s of CPU"
# CI keeps only the end of the output: name what failed right above the count.
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  grep -E '^ *not ok ' test-artifacts/tap.txt | sed 's/^/  /' | head -40
fi
echo "tests: ${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then echo "tap exited with $status"; fi
exit "$status"
