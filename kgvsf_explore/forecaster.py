"""A friendly front door to KG-VSF: forecast a region, compare scenarios, embed pixels.

:class:`Forecaster` wraps a :class:`~kgvsf_explore.models.kgvsf.KGVSF` and the id of its weights
so that a notebook needs one object for region forecasts
(:func:`~kgvsf_explore.inference.region.forecast_region`), scenario difference maps and per-pixel
embeddings.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ._dates import to_timestamp
from .cube.cube import Cube
from .errors import KGVSFError, StartDateWarning
from .inference.embed import embed_region
from .inference.region import forecast_region
from .models.kgvsf import KGVSF
from .models.precision import autocast, pick_device


class Forecaster:
    """KG-VSF weights ready to forecast, compare scenarios and embed a :class:`Cube`.

    Parameters
    ----------
    model
        A :class:`~kgvsf_explore.models.kgvsf.KGVSF` (put in eval mode here).
    weights_id
        The SHA-256 of the weights, recorded in the attrs of every output.

    Examples
    --------
    >>> from kgvsf_explore.forecaster import Forecaster
    >>> fc = Forecaster.from_pretrained()          # doctest: +SKIP
    >>> out = fc.forecast(cube, None, "2022-07-01", horizons=(5, 15, 30))  # doctest: +SKIP
    >>> out.ndvi.sel(horizon=15).plot()            # doctest: +SKIP
    >>> emb = fc.embed(cube, None, "2022-07-01")    # doctest: +SKIP
    >>> emb.dims                                    # doctest: +SKIP
    ('feature', 'y', 'x')
    """

    def __init__(self, model: KGVSF, weights_id: str = "") -> None:
        self.model = model.eval()
        self.weights_id = weights_id

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None,
                        device: Any = "auto") -> Forecaster:
        """Load a checkpoint folder (default: the shipped ``kgvsf-small-pcwv`` weights).

        Parameters
        ----------
        path
            A checkpoint folder (safetensors + JSON config); None for the shipped weights.
        device
            ``"auto"`` (CUDA when available, with bfloat16 autocast; else CPU) or a torch
            device.

        Returns
        -------
        Forecaster

        Examples
        --------
        >>> fc = Forecaster.from_pretrained()   # doctest: +SKIP
        >>> fc                                   # doctest: +SKIP
        Forecaster(objective='kgvsf', tile=32, horizons=1..60 days, weights=3f2a9c1b0d4e)
        """
        from .weights import load_model

        model, sha = load_model(path, device=pick_device(device))
        return cls(model, sha)

    @property
    def cfg(self) -> Any:
        """The model configuration."""
        return self.model.cfg

    def __repr__(self) -> str:
        cfg = self.model.cfg
        sha = self.weights_id[:12] if self.weights_id else "untracked"
        members = getattr(self.model, "members", None)
        ensemble = f", ensemble of {len(members)}" if members is not None else ""
        return (f"Forecaster(objective={self.model.objective!r}, tile={cfg.tile}, "
                f"horizons={cfg.k_min}..{cfg.k_max} days, weights={sha}{ensemble})")

    # ------------------------------------------------------------------------------ forecast
    def forecast(
        self,
        cube: Cube,
        region: Any,
        start: Any,
        horizons: Sequence[int] = (5, 15, 30),
        scenario: Any = None,
        *,
        chunks: int | str | None = None,
        batch_size: int = 16,
        progress: bool = True,
        interval: float | None = None,
    ) -> xr.Dataset:
        """Forecast reflectance and NDVI ``k`` days after the last image on or before ``start``.

        Parameters
        ----------
        cube
            The cube to forecast.
        region
            None (the whole cube), a bbox ``(xmin, ymin, xmax, ymax)`` in the cube's CRS, or a
            shapely geometry / GeoSeries / GeoDataFrame (e.g. some of ``cube.fields``; pixels
            outside it are NaN).
        start
            Forecast date; ``t`` is the last image on or before it, and the result's
            ``attrs["t"]`` says which date that is (``attrs["requested_start"]`` keeps
            ``start``; a time zone is converted to UTC). A start
            more than the longest horizon after ``t`` gives a :class:`StartDateWarning`: every
            forecast date then lies before ``start``.
        horizons
            Days ahead of ``t``, within the model's ``[k_min, k_max]``, each once.
        scenario
            None (observed weather), one :class:`~kgvsf_explore.scenario.Scenario`, or a list
            of them (None in the list is the observed weather; adds a ``scenario`` dimension).
            All scenarios share one encoding of the context.
        chunks
            None: in memory (regions above a million pixels go lazy by themselves); ``"auto"``
            or a block edge in pixels: a lazy, dask-backed result computed block by block with
            the same numbers (see :mod:`kgvsf_explore.inference.chunked`).
        batch_size
            Model tiles per forward pass.
        progress
            Show a progress bar.
        interval
            None, or a central interval level (e.g. 0.8): adds ``reflectance_q10`` /
            ``reflectance_q90`` and ``ndvi_q10`` / ``ndvi_q90`` from the calibration of these
            weights (:meth:`calibrate`, :meth:`load_intervals`, or the ``intervals.json``
            shipped beside the default weights); see :mod:`kgvsf_explore.inference.intervals`.

        Returns
        -------
        xarray.Dataset
            ``reflectance`` ``([scenario,] horizon, band, y, x)`` and ``ndvi``, as
            :func:`~kgvsf_explore.inference.region.forecast_region` returns. The cube may lack
            any of the model's bands (absent, or listed in ``attrs["kgvsf_missing_bands"]``)
            but not all: those bands are still forecast, from the others, and
            ``reflectance.attrs["kgvsf_not_observed"]`` says so.

        Examples
        --------
        >>> from kgvsf_explore.scenario import Scenario
        >>> dry = Scenario.parse("prcp =0", name="dry")                            # doctest: +SKIP
        >>> out = fc.forecast(cube, None, "2022-07-01", (15,), [None, dry])        # doctest: +SKIP
        >>> list(out.scenario.values)                                              # doctest: +SKIP
        ['observed', 'dry']
        """
        start, horizons = _checked_start(cube, start, horizons)
        if interval is not None:  # a bad level or no calibration: said before any work
            from .inference.intervals import check_level

            check_level(self.intervals, interval)
        with self._precision():
            out = forecast_region(self.model, cube, start, horizons, scenario, region=region,
                                  chunks=chunks, batch_size=batch_size, progress=progress,
                                  weights_id=self.weights_id)
        # the date asked for, beside attrs["t"], the image the forecast starts from
        out.attrs["requested_start"] = (str(start.date()) if start == start.normalize()
                                        else start.isoformat())
        if interval is not None:
            from .inference.intervals import add_intervals

            out = add_intervals(out, cube, self.intervals, interval, context=self.cfg.context)
        return out

    @staticmethod
    def compare(baseline: xr.Dataset, scenario: xr.Dataset | None = None,
                var: str = "ndvi") -> xr.DataArray:
        """Difference maps: scenario minus baseline.

        Parameters
        ----------
        baseline
            A forecast. When ``scenario`` is None it must carry a ``scenario`` dimension: each
            scenario is then compared with the one named ``"observed"`` (else the first).
        scenario
            A second forecast on the same grid and horizons; the result is
            ``scenario[var] - baseline[var]``.
        var
            The variable to compare (``"ndvi"`` or ``"reflectance"``).

        Returns
        -------
        xarray.DataArray
            The differences; attrs ``subtracted`` name what was subtracted.

        Examples
        --------
        >>> out = fc.forecast(cube, None, "2022-07-01", (15,), [None, dry])   # doctest: +SKIP
        >>> d = Forecaster.compare(out)                                 # doctest: +SKIP
        >>> list(d.scenario.values)                                     # doctest: +SKIP
        ['dry']
        """
        if var not in baseline:
            raise KGVSFError(f"the forecast has no variable {var!r}")
        if scenario is None:
            if "scenario" not in baseline.dims:
                raise KGVSFError("compare needs two forecasts, or one with a 'scenario' "
                                 "dimension")
            names = [str(n) for n in baseline["scenario"].values]
            ref = "observed" if "observed" in names else names[0]
            base = baseline[var].sel(scenario=ref, drop=True)
            others = [n for n in names if n != ref] or names
            diff = baseline[var].sel(scenario=others) - base
            subtracted = f"scenario {ref!r}"
        else:
            if var not in scenario:
                raise KGVSFError(f"the scenario forecast has no variable {var!r}")
            diff = scenario[var] - baseline[var]
            subtracted = "baseline"
        attrs = {k: v for k, v in baseline[var].attrs.items() if k == "grid_mapping"}
        attrs.update({"long_name": f"{var} difference (scenario minus baseline)",
                      "subtracted": subtracted, "t": baseline.attrs.get("t", ""),
                      "requested_start": baseline.attrs.get("requested_start", "")})
        return diff.rename(f"{var}_difference").assign_attrs(attrs)

    # ------------------------------------------------------------------------------ embed
    def embed(self, cube: Cube, region: Any = None, dates: Any = None, *,
              chunks: int | str | None = None, batch_size: int = 16,
              progress: bool = True) -> xr.DataArray:
        """Per-pixel embeddings at the last image on or before each date.

        The context is the ``model.cfg.context`` images up to ``t`` with the observed
        tile-mean drivers through ``t``; the embedding is the last context position of
        :meth:`KGVSF.embed` (sequence token broadcast to its pixels + per-pixel decoder
        features). Overlapping tiles are averaged.

        Parameters
        ----------
        cube
            The cube.
        region
            None (the whole cube), a bbox in the cube's CRS, or a geometry (pixels outside it
            are NaN).
        dates
            One date (result ``(feature, y, x)``) or a list (result ``(time, feature, y, x)``);
            None is the cube's last image date. Nothing after each date's image is read.
        chunks
            None (in memory), ``"auto"`` or a block edge in pixels for a lazy dask result.
        batch_size
            Model tiles per forward pass.
        progress
            Show a progress bar.

        Returns
        -------
        xarray.DataArray
            float32 with the cube's coordinates and CRS, attrs ``t`` and ``weights_sha256``.

        Examples
        --------
        >>> emb = fc.embed(cube, None, "2022-07-01")     # doctest: +SKIP
        >>> from kgvsf_explore.embeddings import pca_rgb
        >>> pca_rgb(emb).plot.imshow()                   # doctest: +SKIP
        """
        if dates is None:
            dates = cube.times[-1]
        with self._precision():
            return embed_region(self.model, cube, dates, region=region, chunks=chunks,
                                batch_size=batch_size, progress=progress,
                                weights_id=self.weights_id)

    # ------------------------------------------------------------------------------ intervals
    def calibrate(self, cube: Cube | Sequence[Cube], *, n_cases: int = 600, seed: int = 0,
                  period: tuple[Any, Any] | None = None, truth: str = "auto",
                  out: str | os.PathLike | None = None, source: dict | None = None) -> Any:
        """Calibrate forecast intervals of these weights on ``cube`` and keep them.

        Split-conformal residual quantiles by horizon bin, season and anchor age
        (:func:`kgvsf_explore.inference.intervals.calibrate`, where the choices are
        explained). ``cube`` must be a world the weights were not trained on.

        Parameters
        ----------
        cube
            The calibration cube, or several (worlds): ``n_cases`` are drawn from each.
        n_cases, seed, period, truth
            Forecast cases drawn per cube, their seed, the period of their origins (None: all of
            ``cube``) and the outcome (``"auto"``: the simulator's truth where present).
        out
            Also write the calibration here (a folder gets ``intervals.json``), atomically.
        source
            Facts recorded with it (default: ``{"cube": "in-memory cube"}``).

        Returns
        -------
        kgvsf_explore.inference.intervals.Calibration

        Examples
        --------
        >>> cal = fc.calibrate(kx.Cube(kx.make_world(seed=6262)[0]))   # doctest: +SKIP
        >>> out = fc.forecast(cube, None, "2022-07-01", interval=0.8)   # doctest: +SKIP
        """
        from .inference.intervals import calibrate

        with self._precision():
            cal = calibrate(self.model, cube, weights_sha256=self.weights_id, n_cases=n_cases,
                            seed=seed, period=period, truth=truth,
                            source=source or {"cube": "in-memory cube"})
        if out is not None:
            cal.save(out)
        self._intervals = cal
        return cal

    def load_intervals(self, path: str | os.PathLike) -> Any:
        """Use the calibration at ``path`` (a file or a folder holding ``intervals.json``);
        refused (:class:`~kgvsf_explore.inference.intervals.IntervalsMismatchError`) when it
        was made for other weights."""
        from .inference.intervals import Calibration

        cal = Calibration.load(path)
        cal.check(self.weights_id)
        self._intervals = cal
        return cal

    @property
    def intervals(self) -> Any:
        """The calibration in use: the last :meth:`calibrate` / :meth:`load_intervals`, else
        the ``intervals.json`` shipped beside the default weights when it matches them."""
        cal = getattr(self, "_intervals", None)
        if cal is None:
            from .inference.intervals import FILENAME, Calibration, IntervalsError
            from .weights import default_weights

            shipped = default_weights() / FILENAME
            if shipped.is_file():
                cand = Calibration.load(shipped)
                if cand.weights_sha256 == self.weights_id:
                    cal = self._intervals = cand
            if cal is None:
                raise IntervalsError(
                    "these weights have no interval calibration: run fc.calibrate(cube) on a "
                    "world they were not trained on, fc.load_intervals(folder), or `kgvsf "
                    "calibrate --seed N --weights DIR --out DIR`")
        return cal

    def season_embeddings(self, cube: Cube, region: Any = None, season: Any = None, *,
                          chunks: int | str | None = None, batch_size: int = 16,
                          progress: bool = True, every: int = 1) -> xr.DataArray:
        """Per-pixel embeddings ``(time, feature, y, x)`` at every image date of a season.

        Each date's embedding is :meth:`embed` at that image date (nothing later is read).
        The crop-map and soil-moisture heads (:class:`~kgvsf_explore.heads.CropMapHead`,
        :class:`~kgvsf_explore.heads.SoilMoistureHead`) read them.

        Parameters
        ----------
        cube
            The cube.
        region
            None (the whole cube), a bbox in the cube's CRS, or a geometry.
        season
            A year (``2022``) or a ``(start, end)`` pair of dates; None: the last image's year.
        chunks
            None (in memory, one date at a time under a progress bar), ``"auto"`` or a block
            edge in pixels for a lazy dask result (bounded memory).
        batch_size
            Model tiles per forward pass.
        progress
            Show a progress bar over the dates.
        every
            Keep every ``every``-th image date only (cheaper).

        Returns
        -------
        xarray.DataArray
            float32 with coordinates ``doy`` (per date) and ``clear`` ``(time, y, x)``; attrs
            ``weights_sha256`` and ``season``.

        Examples
        --------
        >>> emb = fc.season_embeddings(cube, box, 2022)                 # doctest: +SKIP
        >>> head = kx.CropMapHead().fit(emb, fields_gdf, class_column="crop")  # doctest: +SKIP
        """
        from .heads.season import season_embeddings

        if season is None:
            season = int(cube.times[-1].year)
        with self._precision():
            return season_embeddings(self.model, cube, season, region=region, chunks=chunks,
                                     batch_size=batch_size, progress=progress,
                                     weights_id=self.weights_id, every=every)

    def fill(self, cube: Cube, region: Any = None, dates: Any = None, *, head: Any = None,
             train_dates: int = 400, pixels_per_date: int = 500, seed: int = 0,
             progress: bool = True) -> xr.Dataset:
        """The images at cloud-hidden or missing dates, from the images on both sides of each.

        A :class:`~kgvsf_explore.heads.FillHead` corrects each pixel's linear interpolation
        between its clear observations before and after the date, from those observations,
        the weather between them and this model's forecast of the date and embedding of the
        image before it. Unless ``head`` is given, the head is first fitted on the cube
        itself: clear image dates of the region are hidden one at a time and learnt (no labels
        needed). The dates to fill are hidden throughout, so an image given at a date to fill
        (e.g. a partly clear one) is replaced, never used. See :mod:`kgvsf_explore.heads.fill`.

        Parameters
        ----------
        cube
            The cube.
        region
            None (the whole cube), a bbox in the cube's CRS, or a geometry (pixels outside it
            are NaN). The head learns from this region's pixels.
        dates
            One date or a list: image dates of the cube (cloudy or not) or any other day after
            its first image and within its weather. Default: every image date of the region
            less than half clear.
        head
            A fitted :class:`~kgvsf_explore.heads.FillHead` to reuse (fitted on this cube and
            region, with these dates hidden); an unfitted one to fit with its settings (e.g.
            ``FillHead(max_iter=50, gate=False)``, quicker); None to fit the default.
        train_dates, pixels_per_date
            How many image dates the head learns from (default: every usable one, up to
            400), and pixels per date. Many dates with few pixels each beat few dates with
            many: what linear interpolation misses (snow, harvest, a green-up) is an event of
            a date, so the number of dates is the head's real sample size.
        seed
            Seeds the head's trees and its training pixels.
        progress
            Show progress bars.

        Returns
        -------
        xarray.Dataset
            ``reflectance`` ``(time, band, y, x)`` and ``ndvi`` ``(time, y, x)`` with the
            cube's coordinates; attrs name the method, the weights and the dates the head
            learnt from.

        Examples
        --------
        >>> filled = fc.fill(cube, box, ["2022-07-14", "2022-07-19"])   # doctest: +SKIP
        >>> filled.ndvi.sel(time="2022-07-14").plot()                  # doctest: +SKIP
        """
        from .heads.fill import cloudy_dates, fill_region

        if dates is None:
            dates = cloudy_dates(cube, region)
        with self._precision():
            return fill_region(self.model, cube, dates, region=region, head=head,
                               train_dates=train_dates, pixels_per_date=pixels_per_date,
                               seed=seed, progress=progress, weights_id=self.weights_id)

    def _precision(self) -> Any:
        return autocast(next(self.model.parameters()).device)


def _checked_start(cube: Cube, start: Any, horizons: Sequence[int]) -> tuple[pd.Timestamp,
                                                                             list[int]]:
    """``start`` as a naive UTC Timestamp and ``horizons`` as a list of ints, checked.

    Warns (:class:`StartDateWarning`) when the last image on or before ``start`` lies further
    before it than the longest horizon.
    """
    ts = to_timestamp(start, "forecast start")
    try:
        hs = [int(h) for h in horizons]
    except (TypeError, ValueError) as err:
        raise KGVSFError(f"horizons must be whole numbers of days, got {horizons!r}") from err
    if any(float(h) != int(h) for h in horizons):
        raise KGVSFError(f"horizons must be whole numbers of days, got {list(horizons)}")
    dupes = sorted({h for h in hs if hs.count(h) > 1})
    if dupes:
        raise KGVSFError(f"horizon(s) {dupes} given more than once; give each horizon once")
    times = pd.DatetimeIndex(np.asarray(cube.ds["time"].values))
    before = times[times <= ts]
    if len(before) and hs and min(hs) >= 1:  # bad horizons are refused further on
        t = before.max()
        gap = (ts.normalize() - t.normalize()).days
        if gap > max(hs):
            warnings.warn(
                f"the forecast starts from the last image on or before {ts.date()}, which is "
                f"{t.date()} ({gap} day(s) earlier): every forecast date (t + {max(hs)} days at "
                f"most) lies before {ts.date()}. The cube has no image after {t.date()}"
                if t == times.max() else
                f"the forecast starts from the last image on or before {ts.date()}, which is "
                f"{t.date()} ({gap} day(s) earlier, more than the longest horizon {max(hs)})",
                StartDateWarning, stacklevel=3)
    return ts, hs
