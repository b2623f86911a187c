"""Atomic writes and safe replacement of output folders.

* :func:`atomic_write`: a temporary file in the same folder, fsync, then :func:`os.replace`.
* :func:`replace_dir`: rename the old folder aside, move the new one in, delete the old one.
* :func:`check_output`: validate an output folder *before* any work: refuse a file, the working
  folder (or one of its parents), a folder holding an input, and an existing folder this tool
  did not write (no :data:`MARKER` file) unless ``overwrite``; recover leftovers of an
  interrupted replacement.
* :func:`write_output_dir`: write a folder beside its target and swap it in, marked as ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import OutputPathError

#: What marks an output folder this tool wrote: the root attribute ``kgvsf_output`` of a Zarr
#: store (``kgvsf forecast --out``), or a file of this name in any other folder. An existing
#: ``--out`` without it is never deleted unless ``--overwrite`` is given.
MARKER = ".kgvsf-output"
MARKER_ATTR = "kgvsf_output"
_ASIDE = ".old-"
_TMP = ".tmp-"


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


def _aside_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{_ASIDE}{uuid.uuid4().hex[:8]}")


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TMP}{uuid.uuid4().hex[:8]}")


def _leftovers(path: Path, kind: str) -> list[Path]:
    """Siblings ``.<name><kind>XXXXXXXX`` of ``path``, oldest first."""
    prefix = f".{path.name}{kind}"
    if not path.parent.is_dir():
        return []
    found = [p for p in path.parent.iterdir()
             if p.name.startswith(prefix) and len(p.name) == len(prefix) + 8]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def replace_dir(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``tmp`` to ``path``, replacing an existing ``path``.

    Three steps: the old folder is renamed aside (``.<name>.old-XXXXXXXX``), ``tmp`` is moved
    in, and only then the old folder is deleted. At every moment the old complete folder or the
    new one exists under a known name; :func:`recover_dir` puts things right after a crash
    between the steps.
    """
    tmp, path = Path(tmp), Path(path)
    if path.exists() or path.is_symlink():
        aside = _aside_name(path)
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.replace(aside, path)  # put the old one back
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def recover_dir(path: str | os.PathLike[str]) -> list[str]:
    """Finish or undo a :func:`replace_dir` / :func:`write_output_dir` that was interrupted.

    * ``path`` missing and a complete new folder (one marked by :func:`mark`) left beside it:
      that folder is moved in (roll forward);
    * ``path`` missing and an old folder renamed aside: it is moved back;
    * ``path`` present: folders renamed aside are deleted (the replacement had finished).

    Unfinished temporary folders (no marker) are deleted. Returns one line per action (also
    issued as a :class:`UserWarning`).
    """
    path = Path(path)
    done: list[str] = []
    tmps = _leftovers(path, _TMP)
    asides = _leftovers(path, _ASIDE)
    if not (path.exists() or path.is_symlink()):
        complete = [t for t in tmps if is_ours(t)]
        if complete:
            os.replace(complete[-1], path)
            tmps.remove(complete[-1])
            done.append(f"finished an interrupted write: moved {complete[-1].name} to {path}")
        elif asides:
            old = asides.pop()
            os.replace(old, path)
            done.append(f"restored {path} from {old.name}, where an interrupted replacement "
                        "had renamed it aside")
    for p in asides:
        shutil.rmtree(p, ignore_errors=True)
        done.append(f"deleted {p.name}, the old copy of {path.name} left by an interrupted "
                    "replacement")
    for p in tmps:
        shutil.rmtree(p, ignore_errors=True)
        done.append(f"deleted {p.name}, an unfinished write of {path.name}")
    for line in done:
        warnings.warn(line, UserWarning, stacklevel=2)
    return done


def _zarr_attrs_file(folder: Path) -> Path | None:
    for name in ("zarr.json", ".zattrs"):
        if (folder / name).is_file():
            return folder / name
    return None


def is_ours(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder this tool wrote and marked (see :data:`MARKER`)."""
    folder = Path(path)
    if (folder / MARKER).is_file():
        return True
    meta = _zarr_attrs_file(folder)
    if meta is None:
        return False
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    attrs = data.get("attributes", {}) if meta.name == "zarr.json" else data
    return isinstance(attrs, dict) and MARKER_ATTR in attrs


def mark(folder: str | os.PathLike[str], kind: str = "output") -> None:
    """Mark a finished folder as written by this tool (a Zarr root attribute, else a file)."""
    folder = Path(folder)
    info = {"written_by": "kgvsf_explore", "kind": kind}
    if _zarr_attrs_file(folder) is not None:
        import zarr

        zarr.open_group(str(folder), mode="r+").attrs[MARKER_ATTR] = info
    else:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / MARKER, json.dumps(info))


def check_output(path: str | os.PathLike[str], *, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike[str] | None] = (),
                 option: str = "--out") -> Path:
    """Validate an output folder before any work is done; return it as an absolute path.

    Parameters
    ----------
    path
        The folder (or store) to be written.
    overwrite
        Allow replacing an existing folder that this tool did not write.
    inputs
        Paths the job reads (a cube, weights): the output may not be one of them or hold one.
    option
        The option's name, for the messages.

    Raises
    ------
    OutputPathError
        ``path`` is an existing file, the working folder or one of its parents, an input or a
        folder that holds one, an existing folder without :data:`MARKER` (unless
        ``overwrite``), or its parent cannot be created or written.
    """
    target = Path(path).expanduser().absolute()
    resolved = target.resolve()
    if target.is_file() or (target.exists() and not target.is_dir()):
        raise OutputPathError(
            f"{option} {path} is an existing file, not a folder; give a new path such as "
            f"{target.with_suffix('.zarr').name if target.suffix != '.zarr' else 'out.zarr'}")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputPathError(
            f"{option} {path} is the working folder or one of its parents; writing there would "
            "delete it. Give a new folder, e.g. forecast.zarr")
    for item in inputs:
        if item is None:
            continue
        inp = Path(item).expanduser().resolve()
        if resolved == inp or resolved in inp.parents or inp in resolved.parents:
            raise OutputPathError(
                f"{option} {path} is (or holds, or lies inside) the input {item}; give a "
                "folder of its own")
    parent = target.parent
    for anc in (parent, *parent.parents):
        if anc.exists():
            if not anc.is_dir():
                raise OutputPathError(f"{option} {path}: {anc} is a file, not a folder")
            if not os.access(anc, os.W_OK | os.X_OK):
                raise OutputPathError(f"{option} {path}: cannot write in {anc} "
                                      "(permission denied); pick another place")
            break
    recover_dir(target)
    if target.is_dir() and not is_ours(target) and any(target.iterdir()) and not overwrite:
        raise OutputPathError(
            f"{option} {path} is an existing folder that kgvsf did not write, so it is left "
            "alone. Give a new path, or pass --overwrite to delete it and write there")
    return target


def write_output_dir(target: str | os.PathLike[str], write: Callable[[Path], None],
                     kind: str = "output") -> Path:
    """Call ``write(tmp)`` on a fresh folder beside ``target``, mark it, swap it in.

    ``write`` fills the folder; the mark (:func:`mark`) is added last, so only complete
    folders carry it. An exception (or a kill) leaves ``target`` as it was; the next
    :func:`check_output` or :func:`recover_dir` tidies up what a kill left.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(target)
    try:
        write(tmp)
        mark(tmp, kind)
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
