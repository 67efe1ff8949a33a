#!/usr/bin/env bash
# The whole test suite: installs what is missing, starts pcscd, runs every tap test, and ends with
# one "N passed, N failed" line. Arguments are passed to tap (e.g. a single test file).
set -euo pipefail
. "$(dirname "$0")/lib/setup.sh"
setup_all
# Type errors fail the run: tap's loader strips types without checking them.
(cd "$ROOT" && npm run --silent typecheck)
# The formatter and the linter decide layout (biome.json); a diff from them fails the run.
(cd "$ROOT" && npm run --silent lint)
ensure_pcscd
# A running sandbox holds pcscd's virtual reader with its card: the card tests need it to themselves.
if pgrep -f 'bin/onshi.js sandbox' >/dev/null; then
  echo "test: the sandbox is running (its virtual card occupies pcscd's reader); stop it with Ctrl-C, then run the tests" >&2
  exit 1
fi
cd "$ROOT"
mkdir -p test-artifacts
set +e
npx --no-install tap --reporter=tap "$@" | tee test-artifacts/tap.txt
status=${PIPESTATUS[0]}
set -e
# Top-level results, one per test file.
passed=$(grep -c '^ok ' test-artifacts/tap.txt || true)
failed=$(grep -c '^not ok ' test-artifacts/tap.txt || true)
echo
# CI keeps only the end of the output: name what failed right above the count.
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  grep -E '^ *not ok ' test-artifacts/tap.txt | sed 's/^/  /' | head -40
fi
echo "tests: ${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then echo "tap exited with $status"; fi
exit "$status"
