"""A crop-map head that reads a pixel's whole season of frozen embeddings.

:class:`CropMapHead` is a :class:`~.temporal.TemporalNet` over every image date of the season:
each date's embedding with its day-of-year encoding and clear flag (cloudy dates can be left
out of the pooling: ``mask_cloudy``). It is fitted on a user's labels (polygons or a raster), with
class-balanced cross-entropy, and applied to any region's season embeddings of the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from .. import schema
from ._base import SeasonHead, as_list, check_embeddings, clear_of, pixel_sequences
from ._errors import HeadError, TooFewLabelsError
from .labels import class_raster, sort_classes
from .temporal import NetConfig, doy_features, fit_net, predict_net

__all__ = ["CropMapHead"]

#: Time features per date: day-of-year sin/cos harmonics and the clear flag.
N_TIME = 5


def _time_features(doy: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """``(n, T, N_TIME)`` from ``(T,)`` days of year and ``(n, T)`` clear flags."""
    d = np.broadcast_to(doy_features(doy)[None], clear.shape + (N_TIME - 1,))
    return np.concatenate([d, clear[..., None].astype("float32")], -1)


def _pad(arrays: list[np.ndarray], t: int) -> np.ndarray:
    out = []
    for a in arrays:
        width = [(0, 0)] * a.ndim
        width[1] = (0, t - a.shape[1])
        out.append(np.pad(a, width))
    return np.concatenate(out)


class CropMapHead(SeasonHead):
    """Crop (or any land-cover) classes from a season of frozen embeddings.

    Parameters
    ----------
    hidden
        Width of the temporal network.
    bins
        Day-of-year bins the season is pooled into (0: attention pooling over the dates).
    input_dropout
        Dropout of the embedding features while training (a regulariser).
    steps, batch_size, lr, seed
        Training: AdamW steps, pixels per step, peak learning rate (one-cycle), seed.
    mask_cloudy
        Leave cloudy dates out of the pooling. Off by default: a cloudy date's embedding still
        carries its context, and masking measured worse on a held-out world.
    max_pixels
        Labelled pixels drawn at most per season (seeded).
    min_pixels, min_per_class
        Fewest labelled pixels overall and per class.

    Examples
    --------
    >>> emb = fc.season_embeddings(cube, None, 2021)               # doctest: +SKIP
    >>> head = kx.CropMapHead().fit(emb, fields, class_column="crop")  # doctest: +SKIP
    >>> out = head.predict(fc.season_embeddings(cube, box, 2022))  # doctest: +SKIP
    >>> out.crop_map.plot()                                        # doctest: +SKIP
    """

    kind = "crop_map"

    def __init__(self, hidden: int = 64, bins: int = 24, input_dropout: float = 0.0,
                 steps: int = 800, batch_size: int = 256, lr: float = 3e-3, seed: int = 0,
                 mask_cloudy: bool = False, max_pixels: int = 8000, min_pixels: int = 20,
                 min_per_class: int = 3) -> None:
        super().__init__()
        self.bins, self.input_dropout = bins, input_dropout
        self.hidden, self.steps, self.batch_size, self.lr, self.seed = (
            hidden, steps, batch_size, lr, seed)
        self.mask_cloudy, self.max_pixels = mask_cloudy, max_pixels
        self.min_pixels, self.min_per_class = min_pixels, min_per_class
        self.classes: list = []

    def __repr__(self) -> str:
        state = f"classes={self.classes}" if self.net is not None else "not fitted"
        return f"CropMapHead({state}, weights={self.weights_sha256[:12] or '?'})"

    def _inputs(self, x: np.ndarray, clear: np.ndarray, finite: np.ndarray, doy: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = finite & clear if self.mask_cloudy else finite
        return np.nan_to_num(x), _time_features(doy, clear), mask

    # -------------------------------------------------------------------- fit
    def fit(self, embeddings: xr.DataArray | Sequence[xr.DataArray], labels: Any, *,
            class_column: str | None = None, classes: Sequence[Any] | None = None,
            nodata: Any = -1, progress: bool = True) -> CropMapHead:
        """Fit on the labelled pixels of one or several seasons.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)`` (:func:`~.season.season_embeddings`),
            or a list of them (several seasons or regions).
        labels
            A GeoDataFrame of polygons with a class column, or a ``(y, x)`` DataArray of class
            codes on the embeddings' grid; a list (one per season) for several seasons.
        class_column
            The polygons' class column (default: ``class``, ``crop_type``, ``crop``, ...).
        classes
            The classes in order (default: every class found, sorted).
        nodata
            Raster value meaning "unlabelled" (NaN always is).
        progress
            Show a progress bar over the training steps.

        Returns
        -------
        CropMapHead
            ``self``, fitted.

        Raises
        ------
        LabelGridError, UnknownClassError, TooFewLabelsError, HeadError
        """
        embs = [check_embeddings(e) for e in as_list(embeddings)]
        labs = as_list(labels) if isinstance(embeddings, (list, tuple)) else [labels]
        if len(labs) == 1 and len(embs) > 1:
            labs = labs * len(embs)
        if len(labs) != len(embs):
            raise HeadError(f"{len(embs)} seasons of embeddings but {len(labs)} label sets")
        self._source_of(embs)
        rasters = [class_raster(lab, e, class_column=class_column, classes=classes,
                                nodata=nodata) for lab, e in zip(labs, embs)]
        names = classes if classes is not None else sort_classes(
            {c for _, cl in rasters for c in cl})
        self.classes = [c.item() if hasattr(c, "item") else c for c in names]
        rng = np.random.default_rng(self.seed)
        xs, tfs, ms, ys = [], [], [], []
        for e, (idx, cl) in zip(embs, rasters):
            remap = np.array([self.classes.index(c) for c in cl] + [-1])
            target = remap[idx]  # -1 stays -1 (remap[-1])
            rr, cc = np.nonzero(target >= 0)
            pick = np.sort(rng.permutation(len(rr))[:self.max_pixels])
            rr, cc = rr[pick], cc[pick]
            x, clear, finite = pixel_sequences(np.asarray(e.values), clear_of(e), rr, cc)
            keep = finite.any(1)
            x, tf, m = self._inputs(x[keep], clear[keep], finite[keep], e["doy"].values)
            xs.append(x)
            tfs.append(tf)
            ms.append(m)
            ys.append(target[rr[keep], cc[keep]])
        y = np.concatenate(ys)
        self._check_counts(y)
        t = max(a.shape[1] for a in xs)
        x, tf, m = _pad(xs, t), _pad(tfs, t), _pad(ms, t)
        counts = np.bincount(y, minlength=len(self.classes)).astype("float32")
        weight = torch.from_numpy(counts.sum() / (len(counts) * np.maximum(counts, 1)))

        def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(out, target, weight=weight)

        cfg = NetConfig(n_features=x.shape[-1], n_time=N_TIME, n_out=len(self.classes),
                        hidden=self.hidden, bins=self.bins, steps=self.steps,
                        input_dropout=self.input_dropout,
                        batch_size=self.batch_size, lr=self.lr, seed=self.seed)
        self.net = fit_net(cfg, x, tf, m, y.astype(np.int64), loss, progress)
        self.info = {"pixels": int(len(y)), "seasons": [e.attrs.get("season", "") for e in embs],
                     "pixels_per_class": {str(c): int(n) for c, n in zip(self.classes, counts)}}
        return self

    def _check_counts(self, y: np.ndarray) -> None:
        if len(y) < self.min_pixels:
            raise TooFewLabelsError(
                f"{len(y)} labelled pixels with embeddings; the head needs at least "
                f"{self.min_pixels}: label more fields, or check that the labels overlap the "
                "embedded region")
        counts = np.bincount(y, minlength=len(self.classes))
        few = [f"{c} ({n})" for c, n in zip(self.classes, counts) if n < self.min_per_class]
        if few:
            raise TooFewLabelsError(
                f"too few labelled pixels of class {', '.join(few)} (at least "
                f"{self.min_per_class} each); label more of them or drop the class")
        if len(self.classes) < 2:
            raise TooFewLabelsError(f"the labels hold one class only ({self.classes}); a "
                                    "crop map needs two or more")

    # ---------------------------------------------------------------- predict
    def predict(self, embeddings: xr.DataArray, *, block_pixels: int = 8192) -> xr.Dataset:
        """Class map and per-class probabilities of a season's embeddings.

        Parameters
        ----------
        embeddings
            Season embeddings ``(time, feature, y, x)`` of the weights the head was fitted on
            (in memory or lazy: read ``block_pixels`` at a time).
        block_pixels
            Pixels per block (bounds the memory).

        Returns
        -------
        xarray.Dataset
            ``crop_map (y, x)``: the most probable class (its code when the classes are
            integers, else its index into ``classes``; -1 where no embedding is finite, e.g.
            outside a region geometry), with CF ``flag_values``/``flag_meanings``; and
            ``probability (class, y, x)``.
        """
        emb = check_embeddings(embeddings)
        self._check_source(emb)
        net = self._fitted()
        ny, nx = emb.sizes[schema.Y_DIM], emb.sizes[schema.X_DIM]
        prob = np.full((len(self.classes), ny, nx), np.nan, "float32")
        clear_all = clear_of(emb)
        doy = emb["doy"].values
        step = max(1, block_pixels // max(nx, 1))
        for r0 in range(0, ny, step):
            rows = slice(r0, min(ny, r0 + step))
            values = np.asarray(emb.isel({schema.Y_DIM: rows}).values)
            rr, cc = np.divmod(np.arange(values.shape[2] * nx), nx)
            x, clear, finite = pixel_sequences(values, clear_all[:, rows], rr, cc)
            ok = finite.any(1)
            if not ok.any():
                continue
            out = predict_net(net, *self._inputs(x[ok], clear[ok], finite[ok], doy))
            p = torch.softmax(torch.from_numpy(out), -1).numpy()
            prob[:, r0 + rr[ok], cc[ok]] = p.T
        codes = self._codes()
        best = np.where(np.isfinite(prob[0]), codes[np.nan_to_num(prob, nan=-1).argmax(0)], -1)
        coords = {k: v for k, v in emb.coords.items()
                  if set(v.dims) <= {schema.Y_DIM, schema.X_DIM}}
        names = [str(c).replace(" ", "_") for c in self.classes]
        attrs = {"long_name": "crop map (season head)", "flag_values": codes.tolist(),
                 "flag_meanings": " ".join(names), "weights_sha256": self.weights_sha256,
                 "season": emb.attrs.get("season", "")}
        if schema.GRID_MAPPING in emb.coords:
            attrs["grid_mapping"] = schema.GRID_MAPPING
        dims2 = (schema.Y_DIM, schema.X_DIM)
        return xr.Dataset(
            {"crop_map": (dims2, best.astype(np.int16), attrs),
             "probability": (("class",) + dims2, prob,
                             {"long_name": "class probability (season head)"})},
            coords={**coords, "class": [str(c) for c in self.classes]},
            attrs={"weights_sha256": self.weights_sha256, "season": attrs["season"]})

    def _codes(self) -> np.ndarray:
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
               for c in self.classes):
            return np.asarray(self.classes, np.int64)
        return np.arange(len(self.classes))

    # ------------------------------------------------------------------ files
    def _config(self) -> dict[str, Any]:
        return {"classes": self.classes, "mask_cloudy": self.mask_cloudy,
                "time_features": "doy sin/cos x2, clear"}

    def _set_config(self, cfg: dict[str, Any]) -> None:
        self.classes = list(cfg["classes"])
        self.mask_cloudy = bool(cfg["mask_cloudy"])
        net = cfg["net"]
        self.hidden, self.steps, self.seed = net["hidden"], net["steps"], net["seed"]
        self.bins = net.get("bins", 0)
