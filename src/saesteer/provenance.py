"""Where a run's numbers come from: the software, the machine, the corpus's bytes and the
packages the corpus text and the embedded model were installed from. A run on another
machine trains slightly different SAEs (float kernels differ between CPUs); this is what
tells two runs apart."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# The libraries whose versions decide the numbers.
LIBRARIES = ("torch", "transformers", "sae-lens", "snakemake", "polars", "numpy")


def pypi_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package (None off Debian or when not installed)."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def git_commit(folder: Path) -> dict | None:
    """The checkout's commit and whether its tracked files differ from it; None outside
    a git checkout (an installed wheel)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changed = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "modified": bool(changed)}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The CPU and its thread count (logical cores), and the GPU if torch sees one."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def software() -> dict:
    from saesteer import __version__

    checkout = Path(__file__).resolve().parents[2]
    return {
        "saesteer": __version__,
        "git": git_commit(checkout) if (checkout / ".git").exists() else None,
        "libraries": {name: pypi_version(name) for name in LIBRARIES},
    }


def corpus_sources(names: list[str]) -> dict:
    """Per corpus source, the package its text comes from and that package's version."""
    from saesteer.text_sources import DebianText, text_source

    out = {}
    for name in names:
        source = text_source(name)
        if isinstance(source, DebianText):
            out[name] = {
                "registry": "debian",
                "package": source.package,
                "version": debian_version(source.package),
            }
        else:
            out[name] = {"registry": "pypi", "package": source.package, "version": source.version}
    return out


def model_packages(model_source: str) -> list[dict]:
    """The PyPI packages an embedded model's weights come from (none for other models)."""
    from saesteer.models import EMBEDDED

    prefix = "embedded:"
    if not model_source.startswith(prefix) or model_source[len(prefix) :] not in EMBEDDED:
        return []
    chunks = EMBEDDED[model_source[len(prefix) :]].chunks
    return [{"registry": "pypi", "package": p, "version": v} for p, v, _ in chunks]


def portable_paths(descriptor: dict, root: Path | None = None) -> dict:
    """`descriptor` with its "path" relative to `root` (the working directory, a run's
    checkout) when under it: a committed manifest names no one's home directory."""
    path = descriptor.get("path")
    if not path or not Path(path).is_absolute():
        return descriptor
    try:
        relative = Path(path).relative_to((root or Path.cwd()).resolve())
    except ValueError:
        return descriptor
    return {**descriptor, "path": str(relative)}
