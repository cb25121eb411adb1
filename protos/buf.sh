#!/usr/bin/env bash
# buf over protos/ with the googleapis protos from the installed wheel, so no
# registry is needed: `protos/buf.sh lint` or `protos/buf.sh breaking <git-ref>`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
buf="${BUF:-$root/.tools/node_modules/.bin/buf}"
python="${PYTHON:-$root/.venv/bin/python}"
googleapis="$("$python" -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).resolve().parents[2])')"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
stage() {  # stage <protos dir> <dest>: our protos plus google/api, linted as one module
  mkdir -p "$2/google/api"
  (cd "$1" && find switchyard -name '*.proto' -exec cp --parents {} "$2" \;)
  cp "$googleapis"/google/api/{annotations,http}.proto "$2/google/api/"
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
