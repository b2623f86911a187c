"""What the season heads share: embedding checks, pixel sequences, safetensors + JSON files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import schema
from .._atomic import check_output, write_output_dir
from ..errors import OutputPathError
from ._errors import HeadError
from .season import CLEAR_COORD
from .temporal import NetConfig, TemporalNet

__all__ = ["HEAD_FORMAT", "SeasonHead", "as_list", "pixel_sequences"]

#: Version of the head files (``head.json`` + ``head.safetensors``).
HEAD_FORMAT = 1
WEIGHTS_FILE, CONFIG_FILE = "head.safetensors", "head.json"


def as_list(obj: Any) -> list:
    """A list of one or several seasons' objects."""
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def check_embeddings(emb: Any) -> xr.DataArray:
    """``emb`` if it is a season embedding ``(time, feature, y, x)``, else HeadError."""
    dims = (schema.TIME_DIM, "feature", schema.Y_DIM, schema.X_DIM)
    if not isinstance(emb, xr.DataArray) or tuple(emb.dims) != dims:
        got = tuple(emb.dims) if isinstance(emb, xr.DataArray) else type(emb).__name__
        raise HeadError(f"a head reads season embeddings with dims {dims} (from "
                        f"Forecaster.season_embeddings); got {got}")
    return emb


def days_of(emb: xr.DataArray) -> np.ndarray:
    """Days since 1970 of the embedding dates."""
    import pandas as pd

    return np.asarray((pd.DatetimeIndex(emb[schema.TIME_DIM].values)
                       - pd.Timestamp("1970-01-01")).days)


def clear_of(emb: xr.DataArray) -> np.ndarray:
    """``(time, y, x)`` clear flags (all True when the embeddings carry none)."""
    if CLEAR_COORD in emb.coords:
        return np.asarray(emb[CLEAR_COORD].values, bool)
    shape = (emb.sizes[schema.TIME_DIM], emb.sizes[schema.Y_DIM], emb.sizes[schema.X_DIM])
    return np.ones(shape, bool)


def pixel_sequences(values: np.ndarray, clear: np.ndarray, rows: np.ndarray, cols: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, T, F)`` embeddings, ``(n, T)`` clear flags and finite flags of pixels."""
    x = np.moveaxis(values[:, :, rows, cols], -1, 0).astype("float32", copy=False)
    return x, clear[:, rows, cols].T, np.isfinite(x).all(-1)


class SeasonHead:
    """Base of the heads fitted on season embeddings (save, load, checks)."""

    kind = "season_head"

    def __init__(self) -> None:
        self.net: TemporalNet | None = None
        self.weights_sha256 = ""
        self.info: dict[str, Any] = {}

    # ---------------------------------------------------------------- checks
    def _fitted(self) -> TemporalNet:
        if self.net is None:
            raise HeadError(f"this {type(self).__name__} is not fitted yet: call .fit(...) "
                            f"or {type(self).__name__}.load(path)")
        return self.net

    def _check_source(self, emb: xr.DataArray) -> None:
        net = self._fitted()
        if emb.sizes["feature"] != net.cfg.n_features:
            raise HeadError(f"the head was fitted on {net.cfg.n_features} embedding features; "
                            f"these embeddings have {emb.sizes['feature']}")
        sha = str(emb.attrs.get("weights_sha256", ""))
        if sha and self.weights_sha256 and sha != self.weights_sha256:
            raise HeadError(f"the head was fitted on embeddings of weights "
                            f"{self.weights_sha256[:12]}, these come from weights {sha[:12]}: "
                            "embed with the same weights, or fit a new head")

    def _source_of(self, embs: list[xr.DataArray]) -> None:
        shas = {str(e.attrs.get("weights_sha256", "")) for e in embs}
        if len(shas) > 1:
            raise HeadError(f"the seasons were embedded by different weights ({sorted(shas)}); "
                            "fit a head on one weights' embeddings")
        self.weights_sha256 = shas.pop()

    # ------------------------------------------------------------------ files
    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_config(self, cfg: dict[str, Any]) -> None:
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the head to a folder: ``head.safetensors`` (weights) + ``head.json``.

        The folder is written beside ``path`` and swapped in, so a crash never leaves a half
        head; an existing folder is replaced only with ``overwrite`` (and only if this tool
        wrote it).

        Parameters
        ----------
        path
            The folder.
        overwrite
            Replace an existing head folder.

        Returns
        -------
        pathlib.Path
        """
        from safetensors.torch import save_file

        net = self._fitted()
        target = check_output(path, overwrite=overwrite, option="path")
        if target.exists() and any(target.iterdir()) and not overwrite:
            raise OutputPathError(f"{path} exists; pass overwrite=True to replace it")
        cfg = {"kgvsf_head_format": HEAD_FORMAT, "kind": self.kind, "net": net.cfg.to_dict(),
               "weights_sha256": self.weights_sha256, "fitted": self.info, **self._config()}
        state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}

        def write(tmp: Path) -> None:
            tmp.mkdir(parents=True, exist_ok=True)
            save_file(state, str(tmp / WEIGHTS_FILE))
            (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2))

        return write_output_dir(target, write, kind=self.kind)

    @classmethod
    def load(cls, path: str | os.PathLike[str]):
        """Read a head written by :meth:`save` (safetensors + JSON; nothing is unpickled).

        Raises
        ------
        HeadError
            When the folder lacks the files, or holds another kind of head.
        """
        from safetensors.torch import load_file

        folder = Path(path)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise HeadError(f"{folder} is not a head folder (needs {CONFIG_FILE} and "
                            f"{WEIGHTS_FILE}, written by .save)")
        cfg = json.loads((folder / CONFIG_FILE).read_text())
        if cfg.get("kind") != cls.kind:
            raise HeadError(f"{folder} holds a {cfg.get('kind')!r} head, not a {cls.kind!r}")
        if cfg.get("kgvsf_head_format", 0) > HEAD_FORMAT:
            raise HeadError(f"{folder} was written by a newer kgvsf-explore (head format "
                            f"{cfg.get('kgvsf_head_format')}); upgrade to read it")
        head = cls()
        head._set_config(cfg)
        head.weights_sha256 = cfg.get("weights_sha256", "")
        head.info = cfg.get("fitted", {})
        net = TemporalNet(NetConfig(**cfg["net"]))
        net.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        head.net = net.eval()
        return head
