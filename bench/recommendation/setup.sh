#!/usr/bin/env bash
# The offline evaluation's own environment: MovieLens-100k comes inside the
# recbole wheel (dataset_example/ml-100k). recbole is installed without its
# dependencies (torch & co. are not needed: only the data file is read) into
# bench/.venv, never into the workspace.
set -euo pipefail
cd "$(dirname "$0")/../.."
UV=${UV:-uv}
[ -x bench/.venv/bin/python ] || "$UV" venv --quiet --python 3.11 bench/.venv
"$UV" pip install --quiet --python bench/.venv/bin/python --no-deps "recbole==1.2.1"
echo "bench/.venv ready: bench/.venv/bin/python bench/recommendation/evaluate.py --seed 42"
