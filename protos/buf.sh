#!/usr/bin/env bash
# buf over protos/ with the googleapis protos from the installed wheel and the
# vendored protovalidate proto (protos/buf/validate), so no registry is needed:
# `protos/buf.sh lint` or `protos/buf.sh breaking <git-ref>`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
buf="${BUF:-$root/.tools/node_modules/.bin/buf}"
python="${PYTHON:-$root/.venv/bin/python}"
googleapis="$("$python" -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).resolve().parents[2])')"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
stage() {  # stage <protos dir> <dest>: our protos plus google/api and buf/validate, linted as one module
  mkdir -p "$2/google/api"
  (cd "$1" && find switchyard -name '*.proto' -exec cp --parents {} "$2" \;)
  # A ref from before the vendored copy has none: the current one serves both sides.
  if [[ -d "$1/buf" ]]; then src="$1"; else src="$here"; fi
  (cd "$src" && find buf -name '*.proto' -exec cp --parents {} "$2" \;)
  cp "$googleapis"/google/api/{annotations,http,field_behavior}.proto "$2/google/api/"
  cp "$here/buf.yaml" "$2/buf.yaml"
}

case "${1:-lint}" in
  lint)
    stage "$here" "$workdir/current"
    "$buf" lint "$workdir/current"
    ;;
  breaking)
    ref="${2:-origin/main}"
    mkdir -p "$workdir/against-src"
    git -C "$root" archive "$ref" protos | tar -x -C "$workdir/against-src"
    stage "$here" "$workdir/current"
    stage "$workdir/against-src/protos" "$workdir/against"
    "$buf" breaking "$workdir/current" --against "$workdir/against"
    ;;
  *) echo "usage: $0 lint | breaking [git-ref]" >&2; exit 2 ;;
esac
