#!/usr/bin/env bash
# Breaking changes of the HTTP contract: gateway/openapi.json now against the
# same file at a git ref, by Optic's standard rules (removed operations,
# parameters, response properties or statuses; new required request
# properties; narrowed types and enums), offline:
# `breaking.sh <git-ref>`, or `breaking.sh --files <before.json> <after.json>`.
# Its rules do not look at string lengths, patterns or formats: a tighter one
# passes this check (gateway/tests/integration/test_openapi_breaking.py shows
# what it catches), and review must catch it.
#
# --validation loose: Optic's own schema of OpenAPI refuses a Link's
# requestBody object, which OpenAPI 3.1 allows; the document's validity is
# checked by openapi-spec-validator in make test (gateway/tests/unit/test_openapi.py).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
optic="$(realpath "${OPTIC:-$here/node_modules/.bin/optic}")"

compare() {  # compare <before.json> <after.json>: exit 1 on a breaking change
  local workdir
  workdir="$(mktemp -d)"
  cp "$1" "$workdir/before.json"
  cp "$2" "$workdir/after.json"
  # No telemetry, no update check: the check talks to nothing.
  (cd "$workdir" && NO_UPDATE_NOTIFIER=1 OPTIC_TELEMETRY_LEVEL=off \
    "$optic" diff before.json after.json --check --validation loose --severity error) \
    && status=0 || status=$?
  rm -rf "$workdir"
  return "$status"
}

if [[ "${1:-}" == "--files" ]]; then
  compare "$2" "$3"
  exit
fi
ref="${1:-origin/main}"
if ! git -C "$root" cat-file -e "$ref:gateway/openapi.json" 2>/dev/null; then
  echo "no gateway/openapi.json at $ref: nothing to compare with"
  exit 0
fi
against="$(mktemp)"
trap 'rm -f "$against"' EXIT
git -C "$root" show "$ref:gateway/openapi.json" > "$against"
compare "$against" "$root/gateway/openapi.json"
