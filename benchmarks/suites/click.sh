#!/usr/bin/env bash
# Recipe: click 8.5.1 test suite, from the PyPI sdist (the same layout as ../shared/suites).
# click; 2,434 tests, 929 of which leak into one stream cache (click._compat's
# WeakKeyDictionary, whose values keep their weak keys alive): the suite where
# many reports share one root.
# usage: bash click.sh DIR [PYTHON]
#   DIR/venv (venv, made with PYTHON, default python3), DIR/dl (sdist), DIR/src/ (unpacked)
#   Last line of stdout is the pytest command; all other output goes to stderr.
#   Idempotent: re-running reuses the venv / sdist / unpacked tree.
set -euo pipefail
NAME=click
VER=8.5.1
DIR=$(mkdir -p "${1:?usage: $0 DIR [PYTHON]}" && cd "$1" && pwd)
PY=${2:-python3}
VPY="$DIR/venv/bin/python"
PIP="$VPY -m pip --disable-pip-version-check --no-input -q"
{
  [ -x "$VPY" ] || "$PY" -m venv "$DIR/venv"
  mkdir -p "$DIR/dl" "$DIR/src"
  SDIST=$(ls "$DIR"/dl/*-"$VER".tar.gz 2>/dev/null | head -1 || true)
  if [ -z "$SDIST" ]; then
    $PIP download --no-binary :all: --no-deps "$NAME==$VER" -d "$DIR/dl"
    SDIST=$(ls "$DIR"/dl/*-"$VER".tar.gz | head -1)
  fi
  SRC="$DIR/src/$(basename "$SDIST" .tar.gz)"
  [ -d "$SRC" ] || tar xzf "$SDIST" -C "$DIR/src"
  if [ ! -f "$DIR/.installed" ]; then
    $PIP install "$SRC" pytest==9.2.0 iniconfig==2.3.1 pluggy==1.7.0 packaging==26.4 Pygments==2.21.0
    "$VPY" -m pip freeze --all > "$DIR/freeze.txt"
    touch "$DIR/.installed"
  fi
} >&2
# The project's own addopts deselect its stress tests (-m 'not stress').
echo "cd $SRC && $VPY -m pytest -p no:cacheprovider -q tests"
