"""Artifact I/O: every file is written to a temp name and renamed, so a killed job
never leaves a half-written file that looks complete."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from saesteer.errors import ArtifactError, DataFileError

# The process's umask, read once: mkstemp and mkdtemp make private files (0600, 0700),
# which a renamed artifact would keep, so a colleague could not read explorer/index.html.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _shared_mode(path: Path, directory: bool = False) -> None:
    path.chmod((0o777 if directory else 0o666) & ~_UMASK)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temp files and folders that `atomic_path` or `atomic_dir` left beside
    `path` when a process was killed (`.name.XXXX`, not the `.name.lock` file); only safe
    where nothing else writes `path` at the same time (under its lock). The removed ones."""
    import logging

    path = Path(path)
    stale = [p for p in path.parent.glob(f".{path.name}.*") if p.name != f".{path.name}.lock"]
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        logging.getLogger(__name__).warning("removed %s, left by a killed process", p)
    return stale


@contextmanager
def exclusive(lock_file: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if missing) for the block, so that one
    process makes a shared, made-once file (a converted model) while the others wait."""
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _shared_mode(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp directory beside `path`; it replaces `path` only if the block
    succeeds, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    _shared_mode(tmp, directory=True)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.replace(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def portable_path(path: str | Path) -> str:
    """`path` as model.json and sae.json record it: relative to the working directory (the
    project root, where every job runs) when it lies inside it, so a project copied or
    moved reads its own model and SAEs; else absolute (a hub cache, a user's SAE)."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def write_parquet(df: pl.DataFrame, path: str | Path, schema: dict[str, Any]) -> None:
    """Write `df` with exactly the columns and dtypes of `schema`, atomically."""
    missing = set(schema) - set(df.columns)
    if missing:
        raise ArtifactError(f"{path}: missing columns {sorted(missing)}")
    df = df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and ±Infinity, which JSON lacks and no input here may hold.
    raise DataFileError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    # 1e999 is valid JSON, but Python reads it as inf.
    value = float(text)
    if not math.isfinite(value):
        raise DataFileError(f"{text} is not a finite number")
    return value


def loads_json(text: str | bytes, where: str) -> Any:
    """JSON text whose numbers are all finite, else DataFileError naming `where`."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as e:  # JSONDecodeError, a refused number, a bad encoding
        raise DataFileError(f"{where}: not valid JSON ({e})") from e


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that a float holds finitely."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past a float's range
        return False


def read_json(path: str | Path) -> Any:
    return loads_json(Path(path).read_bytes(), str(path))


def read_json_object(path: str | Path, where: str, expected: str) -> dict:
    """A JSON file holding one object, else DataFileError naming `where`: missing file,
    invalid JSON, or another type than the `expected` shape."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{where}: file not found")
    data = loads_json(path.read_bytes(), where)
    if not isinstance(data, dict):
        raise DataFileError(f"{where}: expected {expected}, got {type(data).__name__}")
    return data
