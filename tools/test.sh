#!/usr/bin/env bash
# The whole test suite: the package is what the notebooks export, notebooks are clean and paired with their
# Markdown twins, the documentation site builds, every numbered notebook's tests pass under nbdev, and the pytest
# suite passes.
set -euo pipefail
cd "$(dirname "$0")/.."

# fail when a step changed tracked files under $1 (or left new ones): the committed tree was not what it produces
unchanged() {
  git rev-parse --git-dir >/dev/null 2>&1 || return 0
  local changed
  changed="$(git diff --name-only -- "$1"; git ls-files --others --exclude-standard -- "$1")"
  if [ -n "$changed" ]; then echo "$changed" >&2; echo "$2" >&2; return 1; fi
}

echo "== nbdev_export: gptnb/ must be exactly what nbs/ exports"
nbdev_export
unchanged gptnb "gptnb/ differs from what the notebooks export: run nbdev_export and commit"

echo "== ship_notebooks: gptnb/notebooks/ must hold exactly the notebooks the package runs"
python tools/ship_notebooks.py
unchanged gptnb "gptnb/notebooks/ differs from nbs/: run python tools/ship_notebooks.py and commit"

echo "== nbdev_clean: notebooks must be committed clean"
nbdev_clean
unchanged nbs "notebooks are not clean: run nbdev_clean and commit"

echo "== jupytext pairs: nbs/*.ipynb and nbs_md/*.md must agree"
python tools/check_pairs.py

echo "== site: build the documentation from the notebooks (rendered as committed, never executed)"
site="$(mktemp -d)"
python tools/build_site.py --out "$site/_site" | tail -n 1
rm -rf "$site"

echo "== notebooks: every numbered notebook runs (its inline tests pass) and shows what is committed"
# a stronger nbdev_test: each notebook executes in a fresh kernel, and its text outputs must match the committed ones
python tools/check_outputs.py

echo "== pytest"
python -m pytest -q -p no:cacheprovider "$@"
