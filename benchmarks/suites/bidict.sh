#!/usr/bin/env bash
# Recipe: bidict 0.21.4 test suite, from the PyPI sdist (the same layout as ../shared/suites).
# bidict; 73 tests, most of them Hypothesis property tests (the newest sdist that ships its
# tests): the suite where the tests that gcguard reruns are the expensive ones.
# usage: bash bidict.sh DIR [PYTHON]
#   DIR/venv (venv, made with PYTHON, default python3), DIR/dl (sdist), DIR/src/ (unpacked)
#   Last line of stdout is the pytest command; all other output goes to stderr.
#   Idempotent: re-running reuses the venv / sdist / unpacked tree.
set -euo pipefail
NAME=bidict
VER=0.21.4
DIR=$(mkdir -p "${1:?usage: $0 DIR [PYTHON]}" && cd "$1" && pwd)
PY=${2:-python3}
VPY="$DIR/venv/bin/python"
PIP="$VPY -m pip --disable-pip-version-check --no-input -q"
{
  [ -x "$VPY" ] || "$PY" -m venv "$DIR/venv"
  mkdir -p "$DIR/dl" "$DIR/src"
  SDIST=$(ls "$DIR"/dl/*-"$VER".tar.gz 2>/dev/null | head -1 || true)
  if [ -z "$SDIST" ]; then
    $PIP download --no-binary "$NAME" --no-deps "$NAME==$VER" -d "$DIR/dl"
    SDIST=$(ls "$DIR"/dl/*-"$VER".tar.gz | head -1)
  fi
  SRC="$DIR/src/$(basename "$SDIST" .tar.gz)"
  [ -d "$SRC" ] || tar xzf "$SDIST" -C "$DIR/src"
  if [ ! -f "$DIR/.installed" ]; then
    $PIP install "$SRC" pytest==9.2.0 iniconfig==2.3.1 pluggy==1.7.0 packaging==26.4 Pygments==2.21.0 \
      hypothesis==6.170.17 sortedcontainers==2.4.0 sortedcollections==2.1.0 pytest-benchmark==5.3.1 py-cpuinfo2==10.1.1
    "$VPY" -m pip freeze --all > "$DIR/freeze.txt"
    touch "$DIR/.installed"
  fi
} >&2
# Its pytest.ini adds its doctests and turns warnings into errors; a fixed seed makes
# every run draw the same examples.
echo "cd $SRC && $VPY -m pytest -p no:cacheprovider -q --hypothesis-seed=0"
