"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder::

    model.safetensors      weights (metadata: format "kgvsf", config_sha256)
    config.json            ModelConfig + TrainConfig (config_to_json)
    state.json             training state (step, phase, history, RNG states, ...) and a
                           manifest with the sha256 of every other file
    optimizer.safetensors  optimiser tensors (optional)
    optimizer.json         optimiser param groups and scalar state (optional)
    <name>.safetensors     extra tensor sets (optional, e.g. the best weights of a phase)

Saving is transactional: every file is written into a fresh ``.tmp-XXXX/`` folder inside the
checkpoint folder (each through a temporary name and :func:`os.replace`) and flushed to disk;
a ``COMMIT`` marker is then written and the files are moved into place with :func:`os.replace`
(``state.json`` last). An interrupted save leaves either the previous checkpoint (no marker:
the half-written folder is ignored and removed by the next save) or a committed journal that
:func:`load_checkpoint` and the next save finish moving (roll forward). Loading never
unpickles: no ``torch.load``.

Loading checks before it allocates anything: the types and sizes in ``config.json`` are bounded
(:data:`CONFIG_BOUNDS`), and the model is first built on PyTorch's ``meta`` device (no memory)
to compare its tensor names and shapes with the safetensors header, so a hostile or damaged
checkpoint fails with a :class:`CheckpointError` in milliseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import atomic_write
from ..errors import KGVSFError
from ..models.config import ModelConfig, TrainConfig, config_from_json, config_to_json

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "atomic_write",
    "build_model",
    "config_sha256",
    "load_checkpoint",
    "load_optimizer_state",
    "load_tensors",
    "save_checkpoint",
    "tensors_sha256",
    "weights_sha256",
]

#: Version of the checkpoint layout (``state.json["checkpoint"]["version"]``).
CHECKPOINT_VERSION = 1
FORMAT = "kgvsf"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
REQUIRED = (MODEL_FILE, CONFIG_FILE, STATE_FILE)
_COMMIT = "COMMIT"
_TMP_PREFIX = ".tmp-"
_MAX_LISTED = 12

#: Inclusive bounds of every integer size of a ``ModelConfig`` in ``config.json``, checked
#: before any model is built (generous: the ``base`` preset uses a fraction of each).
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "tile": (1, 1024), "patch": (1, 256), "dim": (1, 4096), "depth": (1, 64),
    "heads": (1, 64), "seq_depth": (1, 64), "weather_hidden": (1, 4096),
    "pixel_dim": (1, 1024), "context": (1, 366), "k_min": (1, 366), "k_max": (1, 366),
}
#: Most band or driver names a configuration may list.
MAX_NAMES = 64


class CheckpointError(KGVSFError):
    """A checkpoint is missing, incomplete, corrupted or does not match its configuration."""


# ------------------------------------------------------------------------------------------
# helpers


def build_model(model_cfg: ModelConfig, train_cfg: TrainConfig | None = None) -> torch.nn.Module:
    """A freshly initialised :class:`~kgvsf_explore.models.KGVSF` for a configuration.

    Looked up as ``kgvsf_explore.models.KGVSF`` at call time (tests may replace it). With
    ``train_cfg``, the model is built for ``train_cfg.objective``.
    """
    from .. import models

    if train_cfg is None:
        return models.KGVSF(model_cfg)
    extras = {name: getattr(train_cfg, name) for name in ("ndvi_weight", "pair_weight")
              if getattr(train_cfg, name)}
    return models.KGVSF(model_cfg, objective=train_cfg.objective, **extras)


#: Configuration fields added after weights were first saved, with their defaults: left out of
#: the configuration hash when at the default, so older weights keep matching their config.
LATER_CONFIG_FIELDS: dict[str, object] = {"pixel_residual": False, "pixel_context": False,
                                           "weather_windows": False}


def config_sha256(model_cfg: ModelConfig) -> str:
    """sha256 of the canonical JSON of a model configuration (stored in the weights)."""
    d = asdict(model_cfg)
    for key, default in LATER_CONFIG_FIELDS.items():
        if d.get(key) == default:
            d.pop(key, None)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a tensor dict (e.g. a state dict).

    Equal for equal weights wherever they live (file, CPU, GPU) and whatever the key order.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(_byte_dtype()).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _byte_dtype() -> torch.dtype:
    import torch

    return torch.uint8


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _save_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """safetensors file through a temporary name and :func:`os.replace`."""
    import safetensors
    import safetensors.torch as st

    part = path.with_name(path.name + ".part")
    # own, contiguous CPU copies: safetensors refuses shared or strided storage
    cpu = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    try:
        st.save_file(cpu, str(part), metadata=metadata)
    except safetensors.SafetensorError as err:  # what a full disk gives; OSError passes as is
        with contextlib.suppress(OSError):
            part.unlink()
        raise CheckpointError(
            f"could not write {path.name} ({err}); is the disk full? Nothing was replaced: "
            "the previous checkpoint files (if any) are intact. Free some space and save again"
        ) from err
    os.chmod(part, 0o644)  # safetensors creates 0600 files; weights are meant to be shared
    _fsync(part)
    os.replace(part, path)


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=False)


def _limited(items: list[str]) -> str:
    if len(items) <= _MAX_LISTED:
        return ", ".join(items)
    return ", ".join(items[:_MAX_LISTED]) + f", ... ({len(items) - _MAX_LISTED} more)"


# ------------------------------------------------------------------------------------------
# transactions


def _journals(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(_TMP_PREFIX))


def _roll_forward(folder: Path, journal: Path) -> None:
    """Finish a committed save: move its files into place, drop stale files, remove it."""
    commit = json.loads((journal / _COMMIT).read_text())
    for name in commit["files"]:  # state.json is last
        src = journal / name
        if src.exists():
            try:
                os.replace(src, folder / name)
            except FileNotFoundError:  # another process finished it first
                pass
    for name in commit.get("remove", []):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    shutil.rmtree(journal, ignore_errors=True)
    _fsync(folder)


def _recover(folder: Path, *, writer: bool) -> None:
    """Finish committed saves; a writer also removes abandoned (uncommitted) ones."""
    for journal in _journals(folder):
        if (journal / _COMMIT).is_file():
            try:
                _roll_forward(folder, journal)
            except (OSError, ValueError, KeyError) as err:
                raise CheckpointError(
                    f"checkpoint {folder} has an unfinished save in {journal.name} that could "
                    f"not be completed ({err}); remove {journal} to keep the previous files"
                ) from err
        elif writer:
            shutil.rmtree(journal, ignore_errors=True)


def _optimizer_payload(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(tensors, json)`` of an optimiser state dict."""
    import torch

    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {
        "class": type(optimizer).__name__,
        "param_groups": sd["param_groups"],
        "scalar_state": scalars,
        "param_ids": [str(p) for p in sd["state"]],
    }
    return tensors, meta


def save_checkpoint(
    dir: str | os.PathLike[str],
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig | None,
    state: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    extra_tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
) -> Path:
    """Save a checkpoint folder atomically (see the module docstring for the layout).

    Parameters
    ----------
    dir
        Checkpoint folder (created if needed). Files of a previous checkpoint there are
        replaced; other files (e.g. ``history.csv``) and sub-folders are left alone.
    model
        The network (unwrap ``DistributedDataParallel`` first); its ``state_dict`` is saved.
    model_cfg, train_cfg
        Written to ``config.json``; ``train_cfg`` may be None (weights for inference only).
    state
        JSON-serialisable training state (step, phase, history, RNG states as lists of ints...).
        The key ``"checkpoint"`` is reserved.
    optimizer
        Saved to ``optimizer.safetensors`` + ``optimizer.json`` when given.
    extra_tensors
        More tensor sets, each saved as ``<name>.safetensors`` (read with :func:`load_tensors`).

    Returns
    -------
    Path
        The checkpoint folder.
    """
    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    if "checkpoint" in state:
        raise ValueError("the state key 'checkpoint' is reserved")
    _recover(folder, writer=True)
    previous = _manifest_files(folder)
    journal = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=folder))
    try:
        cfg_hash = config_sha256(model_cfg)
        meta = {"format": FORMAT, "config_sha256": cfg_hash}
        files: list[str] = [MODEL_FILE]
        _save_tensors(journal / MODEL_FILE, model.state_dict(), meta)
        if optimizer is not None:
            tensors, opt_meta = _optimizer_payload(optimizer)
            _save_tensors(journal / OPTIMIZER_FILE, tensors, {"format": FORMAT + "-optimizer"})
            atomic_write(journal / OPTIMIZER_JSON, _json_text(opt_meta))
            files += [OPTIMIZER_FILE, OPTIMIZER_JSON]
        for name, tensors in (extra_tensors or {}).items():
            fname = f"{name}.safetensors"
            if fname in REQUIRED or fname == OPTIMIZER_FILE or "/" in name or name.startswith("."):
                raise ValueError(f"invalid extra tensor set name {name!r}")
            _save_tensors(journal / fname, tensors, {"format": FORMAT + "-extra"})
            files.append(fname)
        atomic_write(journal / CONFIG_FILE, config_to_json(model_cfg, train_cfg))
        files.append(CONFIG_FILE)
        full_state = dict(state)
        full_state["checkpoint"] = {
            "version": CHECKPOINT_VERSION,
            "format": FORMAT,
            "config_sha256": cfg_hash,
            "saved_unix": time.time(),
            "files": {name: _file_sha256(journal / name) for name in files},
        }
        atomic_write(journal / STATE_FILE, _json_text(full_state))
        files.append(STATE_FILE)
        remove = sorted(set(previous) - set(files))
        atomic_write(journal / _COMMIT, json.dumps({"files": files, "remove": remove}))
        _fsync(journal)
    except BaseException:
        shutil.rmtree(journal, ignore_errors=True)
        raise
    _roll_forward(folder, journal)
    return folder


def _manifest_files(folder: Path) -> list[str]:
    """Files the current checkpoint's manifest lists (empty when unreadable or absent)."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
        names = list(state["checkpoint"]["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in names if "/" not in n and not n.startswith(".")]


# ------------------------------------------------------------------------------------------
# loading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint file {path} is missing") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointError(f"checkpoint file {path} is corrupted or truncated: {err}") from err


def _read_safetensors(
    path: Path, device: str = "cpu"
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(metadata, tensors)`` of a safetensors file, with errors that name the file."""
    import safetensors
    import safetensors.torch as st

    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = st.load_file(str(path), device=device)
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"checkpoint file {path} is truncated or corrupted (not a readable safetensors "
            f"file: {err})"
        ) from err
    return metadata, tensors


def _read_state(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user state, checkpoint section)`` of ``state.json``."""
    path = folder / STATE_FILE
    state = _read_json(path)
    if not isinstance(state, dict) or not isinstance(state.get("checkpoint"), dict):
        raise CheckpointError(f"{path} is not a kgvsf checkpoint state (no 'checkpoint' section)")
    section = state.pop("checkpoint")
    version = section.get("version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint version {version!r} (this kgvsf_explore reads "
            f"version {CHECKPOINT_VERSION}); save it again with a matching version"
        )
    return state, section


def _verify(folder: Path, section: Mapping[str, Any], name: str) -> None:
    """Check a file against the manifest's sha256 (when the manifest lists it)."""
    expected = section.get("files", {}).get(name)
    if expected is None:
        return
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing (listed in {STATE_FILE})")
    actual = _file_sha256(path)
    if actual != expected:
        raise CheckpointError(
            f"checkpoint file {path} is corrupted or was modified after saving: its sha256 "
            f"{actual[:12]}... differs from {expected[:12]}... recorded in {STATE_FILE}"
        )


def _check_model_json(model: Any, path: Path) -> None:
    """Types and bounds of the ``model`` section of ``config.json`` (before anything is built).
    """
    if not isinstance(model, dict):
        raise CheckpointError(f"{path}: 'model' must be a JSON object, got "
                              f"{type(model).__name__}")
    for key, (lo, hi) in CONFIG_BOUNDS.items():
        if key not in model:
            continue
        value = model[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointError(
                f"{path}: model.{key} must be an integer, got {type(value).__name__} "
                f"{value!r}" + (f"; write {value} without quotes" if isinstance(value, str)
                                and value.strip().isdigit() else ""))
        if not lo <= value <= hi:
            raise CheckpointError(
                f"{path}: model.{key} = {value} is outside {lo}..{hi}; this checkpoint's "
                "configuration is damaged or not meant for kgvsf_explore")
    for key in ("bands", "drivers"):
        names = model.get(key, [])
        if (not isinstance(names, list) or len(names) > MAX_NAMES
                or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)):
            raise CheckpointError(f"{path}: model.{key} must be a list of at most {MAX_NAMES} "
                                  "variable names (strings)")
    for key in ("band_mean", "band_std", "driver_mean", "driver_std"):
        values = model.get(key, [])
        if (not isinstance(values, list) or len(values) > MAX_NAMES
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in values)):
            raise CheckpointError(f"{path}: model.{key} must be a list of finite numbers")
    for key in ("pixel_residual", "pixel_context", "weather_windows"):
        if not isinstance(model.get(key, False), bool):
            raise CheckpointError(f"{path}: model.{key} must be true or false, got "
                                  f"{model[key]!r}")
    dropout = model.get("dropout", 0.0)
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0):
        raise CheckpointError(f"{path}: model.dropout must be a number in [0, 1), got "
                              f"{dropout!r}")


def _read_config(folder: Path) -> tuple[ModelConfig, TrainConfig | None]:
    path = folder / CONFIG_FILE
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot read checkpoint file {path}: {err}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint file {path} is corrupted or truncated: {err}") from err
    except RecursionError as err:
        raise CheckpointError(f"checkpoint file {path} is nested too deeply") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    _check_model_json(data.get("model"), path)
    try:
        return config_from_json(text)
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: {err}") from err


def _header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """``(metadata, shapes)`` of a safetensors file from its header only (nothing loaded)."""
    import safetensors

    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (safetensors.SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"checkpoint file {path} is truncated or corrupted (not a readable safetensors "
            f"file: {err})"
        ) from err
    return metadata, shapes


def _meta_model(model_cfg: ModelConfig, train_cfg: TrainConfig | None,
                cfg_path: Path) -> torch.nn.Module:
    """The model built on the ``meta`` device: names and shapes, no memory."""
    import torch

    try:
        with torch.device("meta"):
            return build_model(model_cfg, train_cfg)
    except (ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{cfg_path}: the model cannot be built from this "
                              f"configuration: {err}") from err


def _zero_default_keys(model: torch.nn.Module) -> tuple[str, ...]:
    """State keys a checkpoint may lack (the model's ``ZERO_DEFAULT_KEYS``: parameters added
    later, zero-initialised, so that weights without them behave exactly as before)."""
    return tuple(getattr(model, "ZERO_DEFAULT_KEYS", ()))


def _with_zero_defaults(
    model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``tensors`` plus zeros for the model's zero-default keys they lack."""
    import torch

    out = dict(tensors)
    state = model.state_dict()
    for key in _zero_default_keys(model):
        if key in state and key not in out:
            out[key] = torch.zeros_like(state[key], device="cpu")
    return out


def _check_keys(
    model: torch.nn.Module, tensors: Mapping[str, Any], path: Path, cfg_path: Path
) -> None:
    """Names and shapes of the weights (tensors, or shapes from the header) vs the model's."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v) if isinstance(v, tuple) else tuple(v.shape) for k, v in tensors.items()}
    missing = sorted(set(expected) - set(found) - set(_zero_default_keys(model)))
    unexpected = sorted(set(found) - set(expected))
    shapes = sorted(
        f"{k}: weights {found[k]} vs config {expected[k]}"
        for k in set(expected) & set(found)
        if found[k] != expected[k]
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys (in the model, not in the weights): {_limited(missing)}")
        if unexpected:
            parts.append(f"unexpected keys (in the weights only): {_limited(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_limited(shapes)}")
        raise CheckpointError(
            f"{cfg_path} does not match the weights in {path}; " + "; ".join(parts)
        )


def load_checkpoint(
    dir: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, ModelConfig, TrainConfig | None, dict[str, Any]]:
    """Load a checkpoint saved by :func:`save_checkpoint` (safetensors and JSON only).

    Parameters
    ----------
    dir
        The checkpoint folder.
    map_location
        Device the returned model lives on.

    Returns
    -------
    model, model_cfg, train_cfg, state
        The network with the saved weights (in ``eval()`` mode), its configurations and the
        saved state (without the reserved ``"checkpoint"`` section).

    Raises
    ------
    CheckpointError
        If a file is missing (named), a safetensors or JSON file is truncated or corrupted
        (named), a file's sha256 differs from the manifest, a configuration value has the
        wrong type or lies outside :data:`CONFIG_BOUNDS`, the configuration does not match
        the weights (missing/unexpected keys and shape mismatches listed), or a version is
        unsupported. All of these are found before the model's memory is allocated.

    Notes
    -----
    The weights may lack exactly the model's ``ZERO_DEFAULT_KEYS`` (parameters added later,
    e.g. ``image_encoder.missing_band``): they are set to zero, which gives the outputs the
    weights had before those parameters existed. Any other missing key is refused.
    """
    folder = Path(dir)
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder at {folder}")
    _recover(folder, writer=False)
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise CheckpointError(
            f"checkpoint {folder} is incomplete: missing {', '.join(missing)} "
            f"(a checkpoint needs {', '.join(REQUIRED)})"
        )
    state, section = _read_state(folder)
    model_cfg, train_cfg = _read_config(folder)  # types and bounds checked
    device = str(map_location)
    model_path = folder / MODEL_FILE
    metadata, shapes = _header(model_path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(
            f"{model_path} is not a kgvsf weights file (metadata format "
            f"{metadata.get('format')!r}, expected {FORMAT!r})"
        )
    # names and shapes compared on the meta device: no memory until they match
    _check_keys(_meta_model(model_cfg, train_cfg, folder / CONFIG_FILE), shapes, model_path,
                folder / CONFIG_FILE)
    if metadata.get("config_sha256") != config_sha256(model_cfg):
        raise CheckpointError(
            f"{folder / CONFIG_FILE} does not match the weights in {model_path}: the weights "
            "were saved with another model configuration (config_sha256 differs), e.g. other "
            "normalisation statistics"
        )
    _verify(folder, section, MODEL_FILE)
    _verify(folder, section, CONFIG_FILE)
    _, tensors = _read_safetensors(model_path, "cpu")
    model = build_model(model_cfg, train_cfg)
    _check_keys(model, tensors, model_path, folder / CONFIG_FILE)
    tensors = _with_zero_defaults(model, tensors)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:  # pragma: no cover - _check_keys catches these first
        raise CheckpointError(f"{model_path}: {err}") from err
    model.to(device)
    model.eval()
    return model, model_cfg, train_cfg, state


def load_tensors(
    dir: str | os.PathLike[str], name: str, map_location: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """An extra tensor set ``<name>.safetensors`` of a checkpoint, checked against the
    manifest."""
    folder = Path(dir)
    _recover(folder, writer=False)
    _, section = _read_state(folder)
    fname = f"{name}.safetensors"
    _, tensors = _read_safetensors(folder / fname, str(map_location))
    _verify(folder, section, fname)
    return tensors


def load_optimizer_state(
    dir: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer,
    map_location: str | torch.device = "cpu",
) -> None:
    """Restore an optimiser saved with :func:`save_checkpoint` (into ``optimizer``).

    Raises
    ------
    CheckpointError
        If the optimiser files are missing, corrupted or of another optimiser class.
    """
    folder = Path(dir)
    _recover(folder, writer=False)
    _, section = _read_state(folder)
    for name in (OPTIMIZER_FILE, OPTIMIZER_JSON):
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {folder} has no optimiser state: missing {name}")
    meta = _read_json(folder / OPTIMIZER_JSON)
    _, tensors = _read_safetensors(folder / OPTIMIZER_FILE, str(map_location))
    _verify(folder, section, OPTIMIZER_FILE)
    _verify(folder, section, OPTIMIZER_JSON)
    if meta.get("class") != type(optimizer).__name__:
        raise CheckpointError(
            f"{folder / OPTIMIZER_JSON} holds a {meta.get('class')} state, not "
            f"{type(optimizer).__name__}"
        )
    state: dict[int, dict[str, Any]] = {int(p): {} for p in meta.get("param_ids", [])}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, scalars in meta.get("scalar_state", {}).items():
        state.setdefault(int(pid), {}).update(scalars)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"optimiser state in {folder} does not fit this model's parameters: {err}"
        ) from err


def weights_sha256(dir: str | os.PathLike[str]) -> str:
    """:func:`tensors_sha256` of a checkpoint's weights (equal for bit-identical weights)."""
    _, tensors = _read_safetensors(Path(dir) / MODEL_FILE)
    return tensors_sha256(tensors)

