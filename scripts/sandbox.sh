#!/usr/bin/env bash
# The sandbox: installs what is missing, then runs the gateway with the central simulator (and the
# virtual card under a real pcscd). Prints one "READY key=value …" line; Ctrl-C stops it.
# Options go to `onshi sandbox` (--state DIR, --port-base N, --line ipsec: across a real IPsec tunnel,
# see docs/line.md).
set -euo pipefail
. "$(dirname "$0")/lib/setup.sh"
setup_all
ensure_pcscd
cd "$ROOT"
exec node bin/onshi.js sandbox "$@"
