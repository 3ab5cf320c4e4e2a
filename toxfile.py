"""tox inline plugin: find every installed CPython 3.10-3.13, and say plainly which are missing.

tox looks for ``python3.X`` on PATH only.  On machines that install Pythons
with pyenv (as CI's does) the other versions are not on PATH, and tox would
skip their environments with a bare "SKIP" and still end in "congratulations".
This adds pyenv's installed 3.10-3.13 to PATH (as ``.ci/run`` does), then
names any version still missing before the run starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

VERSIONS = ("3.10", "3.11", "3.12", "3.13")


def _pyenv_bins() -> list[str]:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            root = None
    versions = Path(root or Path.home() / ".pyenv") / "versions"
    if not versions.is_dir():
        return []
    found = [p for p in versions.iterdir() if re.fullmatch(r"3\.1[0-3]\.\d+", p.name) and (p / "bin").is_dir()]
    return [str(p / "bin") for p in sorted(found, key=lambda p: [int(part) for part in p.name.split(".")])]


def _find_interpreters() -> None:
    bins = [b for b in _pyenv_bins() if b not in os.environ.get("PATH", "").split(os.pathsep)]
    if bins:
        os.environ["PATH"] = os.pathsep.join([*bins, os.environ.get("PATH", "")])
    missing = [v for v in VERSIONS if shutil.which(f"python{v}") is None]
    if missing:
        envs = ", ".join("py" + v.replace(".", "") for v in missing)
        print(
            f"tox: no interpreter found for Python {', '.join(missing)} (not on PATH, not installed by pyenv): "
            f"{envs} will be skipped. Install them to test every supported version.",
            file=sys.stderr,
        )


_find_interpreters()
