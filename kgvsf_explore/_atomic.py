"""Atomic file writes: a temporary file in the same folder, fsync, then :func:`os.replace`."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a part.

    A crash or an exception leaves the previous file (if any) untouched and no temporary file
    behind. New files get the usual umask-governed mode (0644 by default).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(tmp, "xb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def replace_dir(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``tmp`` to ``path``, replacing an existing ``path``.

    The old folder is renamed aside first and deleted only after ``tmp`` took its place, so at
    every moment ``path`` is either the old complete folder or the new one.
    """
    tmp, path = Path(tmp), Path(path)
    if path.exists():
        trash = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, trash)
        os.replace(tmp, path)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path
