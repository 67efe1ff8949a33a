#!/usr/bin/env bash
# `npm run bench`: installs what is missing (as the tests do), builds, starts pcscd for the card
# benchmarks, then runs bench/run.ts with the arguments given (names, --quick).
set -euo pipefail
. "$(dirname "$0")/lib/setup.sh"
setup_all
ensure_pcscd
cd "$ROOT"
exec npx --no-install tsx bench/run.ts "$@"
