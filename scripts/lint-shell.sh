#!/usr/bin/env bash
# The shell scripts' linter (part of `npm run lint`): shellcheck on every tracked file that starts
# with a sh or bash shebang (scripts/, .ci/run, the Debian maintainer scripts), warnings and errors.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || {
  echo "lint: shellcheck is missing (apt-get install shellcheck; ./scripts/test.sh installs it)" >&2
  exit 1
}
files=()
while IFS= read -r f; do
  head -n1 "$f" | grep -qE '^#!.*/(env )?(ba)?sh( |$)' && files+=("$f")
done < <(git ls-files)
shellcheck --external-sources --severity=warning "${files[@]}"
