"""The :class:`Cube`: a thin, immutable-ish wrapper of a schema-following ``xarray.Dataset``."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import schema
from .._atomic import replace_dir
from ..errors import CubeValidationError, RegionError
from ._util import crop_met_grid, geotransform_res, get_crs, index_range, spacing
from .regrid import drivers_on_pixels

if TYPE_CHECKING:
    import geopandas as gpd
    import pyproj

__all__ = [
    "Cube",
    "CubeStats",
    "INDICES",
    "MISSING_BANDS_ATTR",
    "REGION_MASK",
    "listed_missing_bands",
    "missing_bands",
    "observed_bands",
]

#: Name of the boolean ``(y, x)`` variable :meth:`Cube.clip` adds (True inside the geometry).
REGION_MASK = "region_mask"

#: Dataset attribute listing, as a JSON list, the bands a cube never observed (the ingest's
#: ``missing_bands='nan'`` keeps them all-NaN and lists them here).
MISSING_BANDS_ATTR = "kgvsf_missing_bands"


def listed_missing_bands(ds: xr.Dataset) -> list[str]:
    """The bands ``ds.attrs["kgvsf_missing_bands"]`` lists (a JSON list, a list or one name).

    Raises
    ------
    CubeValidationError
        When the attribute is neither a JSON list of names nor a sequence of names.
    """
    import json

    raw = ds.attrs.get(MISSING_BANDS_ATTR)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return []
    value: Any = raw
    if isinstance(raw, bytes):
        value = raw.decode()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as err:
                raise CubeValidationError(
                    f"ds.attrs[{MISSING_BANDS_ATTR!r}] = {raw!r} is not a JSON list of band "
                    'names; write it as json.dumps(["B05"])'
                ) from err
        else:
            value = [text]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise CubeValidationError(
            f"ds.attrs[{MISSING_BANDS_ATTR!r}] = {raw!r} is not a list of band names; write "
            'it as json.dumps(["B05"])'
        )
    return [str(v) for v in value]


def missing_bands(
    ds: xr.Dataset,
    bands: tuple[str, ...] | list[str] = schema.BANDS,
    *,
    check_values: bool = False,
) -> list[str]:
    """The ``bands`` a dataset never observed, in the order of ``bands``.

    A band is missing when it is not a data variable of ``ds`` or when
    ``ds.attrs["kgvsf_missing_bands"]`` (a JSON list) names it, whatever its values; with
    ``check_values`` also when it holds no finite value at all (this reads the band: cheap in
    memory, a full pass over a lazy cube). Missing bands are NaN in samples and enter the
    model as "not observed" (:class:`~kgvsf_explore.cube.sampler.Sampler`,
    :mod:`kgvsf_explore.inference`).

    Parameters
    ----------
    ds
        A schema-following dataset.
    bands
        The bands asked about (default :data:`~kgvsf_explore.schema.BANDS`).
    check_values
        Also count bands without any finite value as missing.

    Returns
    -------
    list of str
    """
    listed = set(listed_missing_bands(ds))
    out = [b for b in bands if b not in ds.data_vars or b in listed]
    if check_values:
        rest = [b for b in bands if b not in out]
        if rest:
            seen = xr.Dataset({b: ds[b].notnull().any() for b in rest}).compute()
            empty = {b for b in rest if not bool(seen[b])}
            out = [b for b in bands if b in out or b in empty]
    return out


def observed_bands(
    ds: xr.Dataset,
    bands: tuple[str, ...] | list[str] = schema.BANDS,
    *,
    error: type[Exception] = CubeValidationError,
) -> list[str]:
    """The ``bands`` a dataset observed (not :func:`missing_bands`); refuses a cube with none.

    Parameters
    ----------
    ds
        A schema-following dataset.
    bands
        The bands wanted (e.g. a model's); any non-empty subset of them is enough.
    error
        The exception class raised when none of ``bands`` is observed.

    Raises
    ------
    error
        Naming the bands asked for, what the dataset holds and how to fix it.
    """
    gone = missing_bands(ds, bands)
    have = [b for b in bands if b not in gone]
    if not have:
        listed = listed_missing_bands(ds)
        present = [b for b in bands if b in ds.data_vars]
        raise error(
            f"the cube observed none of the bands {list(bands)}: "
            + (f"{present} are listed as missing in attrs[{MISSING_BANDS_ATTR!r}] = {listed}"
               if present else "no band variable is present")
            + ". Add at least one band as a (time, y, x) float32 surface reflectance (0-1, "
            "NaN under clouds) named after kgvsf_explore.schema.BANDS (e.g. ingest the image "
            "files with kgvsf ingest); the model accepts any subset of the bands"
        )
    return have

_Bands = dict[str, xr.DataArray]


def _ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """``a / b`` with NaN (and no warning) where ``b`` is 0."""
    return a / b.where(b != 0)


#: Spectral indices :meth:`Cube.index` knows: name -> (bands needed, formula, long name).
INDICES: dict[str, tuple[tuple[str, ...], Callable[[_Bands], xr.DataArray], str]] = {
    "ndvi": (
        ("B08", "B04"),
        lambda b: _ratio(b["B08"] - b["B04"], b["B08"] + b["B04"]),
        "normalized difference vegetation index",
    ),
    "ndwi": (
        ("B03", "B08"),
        lambda b: _ratio(b["B03"] - b["B08"], b["B03"] + b["B08"]),
        "normalized difference water index (McFeeters)",
    ),
    "ndmi": (
        ("B08", "B11"),
        lambda b: _ratio(b["B08"] - b["B11"], b["B08"] + b["B11"]),
        "normalized difference moisture index",
    ),
    "evi": (
        ("B08", "B04", "B02"),
        lambda b: (
            2.5 * _ratio(b["B08"] - b["B04"], b["B08"] + 6.0 * b["B04"] - 7.5 * b["B02"] + 1.0)
        ),
        "enhanced vegetation index",
    ),
    "savi": (
        ("B08", "B04"),
        lambda b: 1.5 * _ratio(b["B08"] - b["B04"], b["B08"] + b["B04"] + 0.5),
        "soil-adjusted vegetation index (L=0.5)",
    ),
    "nbr": (
        ("B08", "B12"),
        lambda b: _ratio(b["B08"] - b["B12"], b["B08"] + b["B12"]),
        "normalized burn ratio",
    ),
    "ndre": (
        ("B08", "B05"),
        lambda b: _ratio(b["B08"] - b["B05"], b["B08"] + b["B05"]),
        "normalized difference red-edge index",
    ),
}


@dataclass(frozen=True)
class CubeStats:
    """Normalisation statistics of a cube.

    Attributes
    ----------
    mean, std
        Per variable name (bands over valid pixels, drivers over every day and native cell,
        ``soil_moisture`` over every day and pixel in the region).
    count
        Number of values each statistic was computed from.
    """

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{name: {"mean": ..., "std": ..., "count": ...}}`` (JSON-serialisable)."""
        return {
            k: {"mean": self.mean[k], "std": self.std[k], "count": self.count[k]} for k in self.mean
        }

    def to_dataset(self) -> xr.Dataset:
        """The statistics as an ``xarray.Dataset`` on a ``variable`` dimension."""
        names = list(self.mean)
        return xr.Dataset(
            {
                "mean": ("variable", [self.mean[n] for n in names]),
                "std": ("variable", [self.std[n] for n in names]),
                "count": ("variable", [self.count[n] for n in names]),
            },
            coords={"variable": names},
        )


class Cube:
    """A datacube of Sentinel-2-like images, daily weather drivers and static layers.

    Wraps an ``xarray.Dataset`` that follows :mod:`kgvsf_explore.schema` (build one with
    :func:`kgvsf_explore.open_cube`, which also validates it). Cubes are immutable-ish: every
    selection method returns a new :class:`Cube` and leaves this one untouched; data stay lazy
    (dask) until :meth:`compute` or an explicit ``.values``.

    Parameters
    ----------
    ds
        The dataset (not validated here; use :func:`kgvsf_explore.validate_dataset`).
    fields
        Optional field polygons (GeoDataFrame), reprojected to the cube's CRS.
    res
        Pixel size ``(xres, yres)`` in CRS units; inferred from the coordinates (or a GDAL
        ``GeoTransform`` attribute) when omitted. Only needed for 1-pixel-wide cubes.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        *,
        fields: gpd.GeoDataFrame | None = None,
        res: tuple[float, float] | None = None,
    ) -> None:
        if not isinstance(ds, xr.Dataset):
            raise TypeError(f"Cube wraps an xarray.Dataset, got {type(ds).__name__}")
        self._ds = ds
        self._res = res if res is not None else self._infer_res(ds)
        self._fields = self._prepare_fields(fields)

    # ---------------------------------------------------------------------------------------
    # construction helpers

    @staticmethod
    def _infer_res(ds: xr.Dataset) -> tuple[float, float] | None:
        sx = spacing(ds[schema.X_DIM].values) if schema.X_DIM in ds.coords else None
        sy = spacing(ds[schema.Y_DIM].values) if schema.Y_DIM in ds.coords else None
        gt = geotransform_res(ds)
        if sx is None and sy is None:
            return gt
        xres = abs(sx) if sx is not None else abs(sy)  # type: ignore[arg-type]
        yres = abs(sy) if sy is not None else xres
        return float(xres), float(yres)

    def _prepare_fields(self, fields: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        if fields is None:
            return None
        crs = get_crs(self._ds)
        if crs is None:
            return fields
        if fields.crs is None:
            return fields.set_crs(crs)
        if not fields.crs.equals(crs):
            return fields.to_crs(crs)
        return fields

    def _new(self, ds: xr.Dataset, fields: gpd.GeoDataFrame | None | bool = True) -> Cube:
        """A new cube on ``ds`` keeping this one's pixel size (and fields unless given)."""
        out = object.__new__(Cube)
        out._ds = ds
        out._res = self._res
        if fields is True:
            out._fields = self._fields
        elif fields is False or fields is None:
            out._fields = None
        else:
            out._fields = fields
        return out

    # ---------------------------------------------------------------------------------------
    # basic properties

    @property
    def ds(self) -> xr.Dataset:
        """The wrapped ``xarray.Dataset`` (do not modify it in place)."""
        return self._ds

    @property
    def crs(self) -> pyproj.CRS:
        """The cube's CRS as a :class:`pyproj.CRS` (from ``spatial_ref`` or ``attrs['crs']``)."""
        crs = get_crs(self._ds)
        if crs is None:
            raise CubeValidationError(
                "the cube has no CRS: add a 'spatial_ref' variable with a 'crs_wkt' attribute "
                "or ds.attrs['crs'] = 'EPSG:...'"
            )
        return crs

    @property
    def bands(self) -> tuple[str, ...]:
        """Names of the band variables present, in :data:`~kgvsf_explore.schema.BANDS` order
        (including bands listed as missing; see :attr:`observed_bands`)."""
        return tuple(b for b in schema.BANDS if b in self._ds.data_vars)

    def missing_bands(self, *, check_values: bool = False) -> tuple[str, ...]:
        """Bands of :data:`~kgvsf_explore.schema.BANDS` the cube never observed.

        Absent from the dataset or listed in ``attrs["kgvsf_missing_bands"]``; with
        ``check_values`` also those without any finite value (reads them). See
        :func:`missing_bands`.
        """
        return tuple(missing_bands(self._ds, check_values=check_values))

    @property
    def observed_bands(self) -> tuple[str, ...]:
        """Bands present and not listed as missing: those :attr:`valid` pixels need finite."""
        missing = set(self.missing_bands())
        return tuple(b for b in schema.BANDS if b not in missing)

    @property
    def driver_names(self) -> tuple[str, ...]:
        """Names of the drivers present, in :data:`~kgvsf_explore.schema.DRIVERS` order."""
        return tuple(d for d in schema.DRIVERS if d in self._ds.data_vars)

    @property
    def res_xy(self) -> tuple[float, float]:
        """Pixel size ``(xres, yres)`` in CRS units (metres), both positive."""
        if self._res is None:
            raise CubeValidationError("cannot tell the pixel size of a 1x1 cube without res=")
        return self._res

    @property
    def res(self) -> float:
        """Pixel size in metres (x spacing; cubes have square pixels, see :attr:`res_xy`)."""
        return self.res_xy[0]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the pixel edges, in the cube's CRS."""
        x = np.asarray(self._ds[schema.X_DIM].values, dtype="float64")
        y = np.asarray(self._ds[schema.Y_DIM].values, dtype="float64")
        rx, ry = self.res_xy
        return (
            float(x.min() - rx / 2),
            float(y.min() - ry / 2),
            float(x.max() + rx / 2),
            float(y.max() + ry / 2),
        )

    @property
    def shape(self) -> dict[str, int]:
        """Sizes of the core dimensions present: ``{"time", "day", "y", "x"}``."""
        dims = (schema.TIME_DIM, schema.DAY_DIM, schema.Y_DIM, schema.X_DIM)
        return {d: int(self._ds.sizes[d]) for d in dims if d in self._ds.dims}

    @property
    def times(self) -> pd.DatetimeIndex:
        """Image dates (``time``)."""
        if schema.TIME_DIM not in self._ds.coords:
            return pd.DatetimeIndex([])
        return pd.DatetimeIndex(self._ds[schema.TIME_DIM].values)

    @property
    def days(self) -> pd.DatetimeIndex:
        """Daily axis of the drivers and soil moisture (``day``)."""
        if schema.DAY_DIM not in self._ds.coords:
            return pd.DatetimeIndex([])
        return pd.DatetimeIndex(self._ds[schema.DAY_DIM].values)

    # ---------------------------------------------------------------------------------------
    # data views

    @property
    def reflectance(self) -> xr.DataArray:
        """The bands stacked as ``(time, band, y, x)`` float32 (NaN under clouds), lazily."""
        if not self.bands:
            raise CubeValidationError("the cube has no band variables")
        da = self._ds[list(self.bands)].to_dataarray("band")
        return (
            da.transpose(schema.TIME_DIM, "band", schema.Y_DIM, schema.X_DIM)
            .astype("float32")
            .rename("reflectance")
        )

    @property
    def truth(self) -> xr.DataArray | None:
        """Cloud-free truth ``<band>_true`` as ``(time, band, y, x)``, or None if absent."""
        names = {schema.truth_name(b): b for b in self.bands}
        if not names or any(n not in self._ds.data_vars for n in names):
            return None
        da = self._ds[list(names)].rename(names).to_dataarray("band")
        return (
            da.transpose(schema.TIME_DIM, "band", schema.Y_DIM, schema.X_DIM)
            .astype("float32")
            .rename("truth")
        )

    @property
    def valid(self) -> xr.DataArray:
        """``(time, y, x)`` bool: not cloudy, every observed band finite and (if clipped) in
        the region (bands listed as missing do not count: :attr:`observed_bands`)."""
        ds = self._ds
        ok = None
        for b in self.observed_bands:
            fin = ds[b].notnull()
            ok = fin if ok is None else ok & fin
        if ok is None:
            observed_bands(ds)  # raises, saying why no band counts
        assert ok is not None
        if schema.CLOUD_MASK in ds:
            ok = ok & ~ds[schema.CLOUD_MASK].astype(bool)
        if REGION_MASK in ds:
            ok = ok & ds[REGION_MASK]
        return ok.transpose(schema.TIME_DIM, schema.Y_DIM, schema.X_DIM).rename("valid")

    @property
    def drivers(self) -> xr.Dataset:
        """The drivers on ``(day, y, x)`` float32, lazily (see :func:`drivers_on_pixels`)."""
        return drivers_on_pixels(self._ds)

    @property
    def soil_moisture(self) -> xr.DataArray | None:
        """Daily root-zone soil moisture ``(day, y, x)`` in m3/m3, or None if absent."""
        return self._ds.get(schema.SOIL_MOISTURE)

    @property
    def crop_type(self) -> xr.DataArray:
        """Crop class codes ``(y, x)``; names via ``legend("crop_type")``. For a cube whose
        crops rotate (``crop_type`` on ``(year, y, x)``) the map of its last year; other years
        by :meth:`crop_map`."""
        return schema.crop_map(self._static(schema.CROP_TYPE))

    def crop_map(self, year: int | None = None) -> xr.DataArray:
        """Crop class codes ``(y, x)`` of calendar ``year`` (see
        :func:`kgvsf_explore.schema.crop_map`); the same map every year when crops do not
        rotate."""
        return schema.crop_map(self._static(schema.CROP_TYPE), year)

    @property
    def field_id(self) -> xr.DataArray:
        """Field identifiers ``(y, x)`` (0 outside fields), matching ``fields.field_id``."""
        return self._static(schema.FIELD_ID)

    @property
    def soil_type(self) -> xr.DataArray:
        """Soil class codes ``(y, x)``; names via ``legend("soil_type")``."""
        return self._static(schema.SOIL_TYPE)

    def _static(self, name: str) -> xr.DataArray:
        if name not in self._ds:
            raise KeyError(f"the cube has no '{name}' layer; variables: {list(self._ds.data_vars)}")
        return self._ds[name]

    def legend(self, name: str) -> dict[int, str]:
        """The ``{code: name}`` legend of a categorical layer (from CF ``flag_*`` attributes).

        Returns an empty dict when the layer carries no legend (e.g. ``field_id``).
        """
        return schema.legend_from_attrs(self._static(name).attrs)

    def crop_mask(self, *crops: str | int) -> xr.DataArray:
        """Boolean ``(y, x)`` mask of pixels of the given crop classes (names or codes).

        Examples
        --------
        >>> corn = cube.crop_mask("corn")                   # doctest: +SKIP
        >>> change.where(corn).mean(["y", "x"])             # doctest: +SKIP
        """
        legend = self.legend(schema.CROP_TYPE)
        by_name = {v: k for k, v in legend.items()}
        codes = []
        for crop in crops:
            if isinstance(crop, str):
                if crop not in by_name:
                    raise KeyError(f"unknown crop {crop!r}; this cube's crops are "
                                   f"{sorted(by_name)}")
                codes.append(by_name[crop])
            else:
                codes.append(int(crop))
        if not codes:
            raise ValueError("crop_mask needs at least one crop name or code")
        return self.crop_type.isin(codes).rename("crop_mask").assign_attrs(
            long_name="pixel of " + ", ".join(str(c) for c in crops))

    @property
    def fields(self) -> gpd.GeoDataFrame | None:
        """Field polygons in the cube's CRS (clipped to the region of a cropped cube), or None."""
        return self._fields

    # ---------------------------------------------------------------------------------------
    # indices and statistics

    def index(self, name: str) -> xr.DataArray:
        """A spectral index on ``(time, y, x)`` float32, NaN where not :attr:`valid`.

        Parameters
        ----------
        name
            One of ``ndvi``, ``ndwi``, ``ndmi``, ``evi``, ``savi``, ``nbr``, ``ndre``
            (case-insensitive); see :data:`INDICES`.
        """
        key = name.lower()
        if key not in INDICES:
            raise ValueError(f"unknown index {name!r}; known: {sorted(INDICES)}")
        needed, formula, long_name = INDICES[key]
        missing = missing_bands(self._ds, needed)
        if missing:
            raise CubeValidationError(
                f"index {key} needs band(s) {missing}, which the cube never observed (absent "
                f"or listed in attrs[{MISSING_BANDS_ATTR!r}])"
            )
        bands = {b: self._ds[b].astype("float32") for b in needed}
        out = formula(bands).where(self.valid).astype("float32")
        return out.rename(key).assign_attrs(long_name=long_name, units="1")

    def ndvi(self) -> xr.DataArray:
        """NDVI ``(B08 - B04) / (B08 + B04)`` on ``(time, y, x)``, NaN where cloudy."""
        return self.index("ndvi")

    def stats(self) -> CubeStats:
        """Normalisation statistics (mean, std, count), computed in one dask pass.

        Bands are summarised over :attr:`valid` pixels; drivers over every day of their native
        grid; ``soil_moisture`` over every day and pixel (inside the region of a clipped cube).
        """
        ds = self._ds
        lazy: dict[str, xr.DataArray] = {}
        if self.bands:
            valid = self.valid
            for b in self.bands:
                lazy[b] = ds[b].astype("float64").where(valid)
        for d in self.driver_names:
            lazy[d] = ds[d].astype("float64")
        if schema.SOIL_MOISTURE in ds:
            sm = ds[schema.SOIL_MOISTURE].astype("float64")
            lazy[schema.SOIL_MOISTURE] = sm.where(ds[REGION_MASK]) if REGION_MASK in ds else sm
        moments = xr.Dataset(
            {
                **{f"{k}|n": v.count() for k, v in lazy.items()},
                **{f"{k}|mean": v.mean() for k, v in lazy.items()},
                **{f"{k}|std": v.std() for k, v in lazy.items()},
            }
        ).compute()
        return CubeStats(
            mean={k: float(moments[f"{k}|mean"]) for k in lazy},
            std={k: float(moments[f"{k}|std"]) for k in lazy},
            count={k: int(moments[f"{k}|n"]) for k in lazy},
        )

    # ---------------------------------------------------------------------------------------
    # region selection

    def _crs_label(self) -> str:
        try:
            return self.crs.to_string()
        except CubeValidationError:
            return "unknown CRS"

    def _bounds_text(self) -> str:
        b = self.bounds
        return f"({b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f}) in {self._crs_label()}"

    def _crop(self, bounds: tuple[float, float, float, float], what: str) -> xr.Dataset:
        """Pixels overlapping ``bounds`` (cube CRS); met grid cropped with a margin."""
        xmin, ymin, xmax, ymax = bounds
        cx0, cy0, cx1, cy1 = self.bounds
        if xmin >= cx1 or xmax <= cx0 or ymin >= cy1 or ymax <= cy0:
            raise RegionError(
                f"{what} ({xmin:.1f}, {ymin:.1f}, {xmax:.1f}, {ymax:.1f}) lies outside the cube, "
                f"whose bounds are {self._bounds_text()}"
            )
        rx, ry = self.res_xy
        x = np.asarray(self._ds[schema.X_DIM].values, dtype="float64")
        y = np.asarray(self._ds[schema.Y_DIM].values, dtype="float64")
        xs = index_range((x + rx / 2 > xmin) & (x - rx / 2 < xmax))
        ys = index_range((y + ry / 2 > ymin) & (y - ry / 2 < ymax))
        if xs is None or ys is None:
            raise RegionError(f"{what} covers no pixel of the cube ({self._bounds_text()})")
        ds = self._ds.isel({schema.X_DIM: xs, schema.Y_DIM: ys})
        x2, y2 = x[xs], y[ys]
        new_bounds = (x2.min() - rx / 2, y2.min() - ry / 2, x2.max() + rx / 2, y2.max() + ry / 2)
        return crop_met_grid(ds, new_bounds)

    @staticmethod
    def _require_valid(ds: xr.Dataset, what: str, mask: xr.DataArray | None = None) -> None:
        gone = set(missing_bands(ds))
        bands = [b for b in schema.BANDS if b not in gone]
        if not bands:
            return
        ok = ds[bands[0]].notnull()
        if schema.CLOUD_MASK in ds:
            ok = ok & ~ds[schema.CLOUD_MASK].astype(bool)
        if mask is not None:
            ok = ok & mask
        if not bool(ok.any()):
            raise RegionError(
                f"{what} holds no valid observation (every pixel NaN or cloudy on every date); "
                "choose another region or period, or pass require_valid=False"
            )

    def _clip_fields(self, geom: Any) -> gpd.GeoDataFrame | None:
        if self._fields is None:
            return None
        import geopandas as gpd

        clipped = gpd.clip(self._fields, geom)
        return clipped[~clipped.geometry.is_empty]

    def sel_bbox(
        self,
        xmin: float,
        ymin: float,
        xmax: float,
        ymax: float,
        crs: Any = None,
        *,
        require_valid: bool = True,
    ) -> Cube:
        """Crop to a bounding box (pixels whose footprint overlaps it).

        Parameters
        ----------
        xmin, ymin, xmax, ymax
            The box; in ``crs`` if given (for geographic CRSs pass longitude as x, latitude as
            y), otherwise in the cube's CRS.
        crs
            Anything :meth:`pyproj.CRS.from_user_input` accepts (``"EPSG:4326"``, ...).
        require_valid
            Raise :class:`RegionError` if the region has no valid observation at all (reads the
            first band and the cloud mask over the region).

        Raises
        ------
        RegionError
            The box is empty, outside the cube or without any valid observation.
        """
        if not (xmin < xmax and ymin < ymax):
            raise RegionError(
                f"empty bbox ({xmin}, {ymin}, {xmax}, {ymax}): need xmin < xmax and ymin < ymax"
            )
        what = "bbox"
        if crs is not None:
            from pyproj import CRS, Transformer

            src = CRS.from_user_input(crs)
            if not src.equals(self.crs):
                tr = Transformer.from_crs(src, self.crs, always_xy=True)
                xmin, ymin, xmax, ymax = tr.transform_bounds(xmin, ymin, xmax, ymax, densify_pts=21)
                what = f"bbox (given in {src.to_string()}, here in the cube's CRS)"
        ds = self._crop((xmin, ymin, xmax, ymax), what)
        if require_valid:
            self._require_valid(ds, what)
        out = self._new(ds, fields=False)
        if self._fields is not None:
            import shapely

            out._fields = self._clip_fields(shapely.box(*out.bounds))
        return out

    def window(
        self, row: int, col: int, height: int, width: int, *, require_valid: bool = True
    ) -> Cube:
        """Crop to a pixel window: rows ``row:row+height``, columns ``col:col+width``.

        A window reaching past the far edges is cut at the edge (like numpy slicing).

        Raises
        ------
        RegionError
            Empty window (non-positive size, negative offset or starting outside the cube), or a
            window without any valid observation (with ``require_valid``).
        """
        ny, nx = self._ds.sizes[schema.Y_DIM], self._ds.sizes[schema.X_DIM]
        if height <= 0 or width <= 0:
            raise RegionError(f"empty window: height={height}, width={width} must be positive")
        if row < 0 or col < 0 or row >= ny or col >= nx:
            raise RegionError(
                f"window offset (row={row}, col={col}) is outside the cube of {ny} rows x "
                f"{nx} columns"
            )
        ds = self._ds.isel(
            {schema.Y_DIM: slice(row, row + height), schema.X_DIM: slice(col, col + width)}
        )
        what = f"window (row={row}, col={col}, height={height}, width={width})"
        tmp = self._new(ds, fields=False)
        ds = crop_met_grid(ds, tmp.bounds)
        if require_valid:
            self._require_valid(ds, what)
        out = self._new(ds, fields=False)
        if self._fields is not None:
            import shapely

            out._fields = self._clip_fields(shapely.box(*out.bounds))
        return out

    def clip(self, geometry: Any, crs: Any = None, *, require_valid: bool = True) -> Cube:
        """Crop to a geometry's bounds and add a boolean ``region_mask`` ``(y, x)`` variable.

        ``region_mask`` is True at pixels whose centre lies inside the geometry; data outside are
        kept but :attr:`valid`, :meth:`index` and :meth:`stats` exclude them.

        Parameters
        ----------
        geometry
            A shapely geometry, GeoSeries or GeoDataFrame (all parts are united).
        crs
            CRS of a shapely geometry (or of a GeoSeries/GeoDataFrame without one); defaults to
            the cube's CRS. GeoSeries/GeoDataFrames with a CRS are reprojected from it.
        require_valid
            Raise :class:`RegionError` if no valid observation falls inside the geometry.
        """
        import geopandas as gpd
        import shapely

        if isinstance(geometry, gpd.GeoDataFrame):
            geometry = geometry.geometry
        if isinstance(geometry, gpd.GeoSeries):
            src = geometry.crs or crs or self.crs
            series = gpd.GeoSeries(geometry.values, crs=src)
        elif isinstance(geometry, shapely.Geometry):
            series = gpd.GeoSeries([geometry], crs=crs or self.crs)
        else:
            raise TypeError(
                "clip() takes a shapely geometry, GeoSeries or GeoDataFrame, got "
                f"{type(geometry).__name__}"
            )
        geom = series.to_crs(self.crs).union_all()
        if geom is None or geom.is_empty:
            raise RegionError("empty geometry: nothing to clip to")
        if not geom.intersects(shapely.box(*self.bounds)):
            gb = geom.bounds
            raise RegionError(
                f"geometry (bounds {gb[0]:.1f}, {gb[1]:.1f}, {gb[2]:.1f}, {gb[3]:.1f} in the "
                f"cube's CRS) does not intersect the cube, whose bounds are {self._bounds_text()}"
            )
        ds = self._crop(geom.bounds, "geometry")
        xx, yy = np.meshgrid(ds[schema.X_DIM].values, ds[schema.Y_DIM].values)
        inside = shapely.contains_xy(geom, xx, yy)
        if REGION_MASK in ds:
            inside &= np.asarray(ds[REGION_MASK].values, dtype=bool)
        if not inside.any():
            raise RegionError(
                "the geometry covers no pixel centre of the cube (is it smaller "
                f"than a {self.res:g} m pixel, or outside a previous clip?)"
            )
        mask = xr.DataArray(
            inside,
            dims=(schema.Y_DIM, schema.X_DIM),
            coords={schema.Y_DIM: ds[schema.Y_DIM], schema.X_DIM: ds[schema.X_DIM]},
            attrs={
                "long_name": "pixel centre inside the clip geometry",
                "grid_mapping": schema.GRID_MAPPING,
            },
        )
        ds = ds.assign({REGION_MASK: mask})
        if require_valid:
            self._require_valid(ds, "geometry", mask)
        out = self._new(ds, fields=False)
        out._fields = self._clip_fields(geom.intersection(shapely.box(*out.bounds)))
        return out

    def sel_time(self, start: Any = None, end: Any = None) -> Cube:
        """Keep image dates and days in ``[start, end]`` (inclusive; strings or datetimes).

        Raises
        ------
        RegionError
            If no image date falls in the period.
        """
        sel = {
            d: slice(start, end) for d in (schema.TIME_DIM, schema.DAY_DIM) if d in self._ds.coords
        }
        ds = self._ds.sel(sel)
        if schema.TIME_DIM in ds.dims and ds.sizes[schema.TIME_DIM] == 0:
            t = self.times
            span = f"{t[0].date()}..{t[-1].date()}" if len(t) else "none"
            raise RegionError(
                f"no image date between {start} and {end}; the cube's image dates span {span}"
            )
        if schema.DAY_DIM in ds.dims and ds.sizes[schema.DAY_DIM] == 0:
            raise RegionError(f"no driver day between {start} and {end}")
        return self._new(ds)

    # ---------------------------------------------------------------------------------------
    # loading and writing

    def compute(self) -> Cube:
        """A new cube with every variable loaded into memory (numpy)."""
        return self._new(self._ds.compute())

    def load(self) -> Cube:
        """Same as :meth:`compute` (returns a new, loaded cube; this one stays lazy)."""
        return self.compute()

    def to_dataset(self) -> xr.Dataset:
        """The underlying dataset (a shallow copy)."""
        return self._ds.copy()

    def _for_writing(self) -> xr.Dataset:
        ds = self._ds.copy()
        for name in list(ds.variables):
            var = ds.variables[name]
            var.encoding = {
                k: v
                for k, v in var.encoding.items()
                if k not in ("chunks", "preferred_chunks", "shards")
            }
            chunks = getattr(var.data, "chunks", None)
            if chunks is not None and name in ds.data_vars:
                regular = {d: max(c) for d, c in zip(var.dims, chunks, strict=True) if len(c) > 1}
                if regular:
                    ds[name] = ds[name].chunk(regular)
        return ds

    def to_zarr(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the cube to a Zarr store atomically and return its path.

        The store is written to a hidden temporary sibling directory, then renamed into place,
        so a crash never leaves a half-written store at ``path``.

        Parameters
        ----------
        path
            Target store (conventionally ``something.zarr``).
        overwrite
            Replace an existing ``path``; without it an existing path raises
            :class:`FileExistsError`.
        """
        path = Path(path).expanduser()
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
                self._for_writing().to_zarr(tmp, mode="w-", consolidated=True)
            replace_dir(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``directory/cube.zarr`` (+ ``fields.parquet`` when the cube has fields).

        This is the simulator's layout, which :func:`kgvsf_explore.open_cube` reads back.
        """
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        self.to_zarr(directory / "cube.zarr", overwrite=overwrite)
        if self._fields is not None:
            target = directory / "fields.parquet"
            if target.exists() and not overwrite:
                raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
            tmp = directory / f".fields.parquet.tmp-{uuid.uuid4().hex[:8]}"
            self._fields.to_parquet(tmp)
            os.replace(tmp, target)
        return directory

    # ---------------------------------------------------------------------------------------
    # plotting and display

    @property
    def hvplot(self) -> Any:
        """``self.ds.hvplot`` (imports ``hvplot.xarray`` on first use), e.g.
        ``cube.hvplot.image(x="x", y="y", z="B04", groupby="time", data_aspect=1)``."""
        import hvplot.xarray  # noqa: F401

        return self._ds.hvplot

    def _map_array(self, var: str) -> xr.DataArray:
        if var.lower() in INDICES:
            return self.index(var)
        if var in self.driver_names:
            return drivers_on_pixels(self._ds, (var,))[var]
        if var in self._ds:
            return self._ds[var]
        raise KeyError(
            f"unknown variable {var!r}; indices {sorted(INDICES)} or variables "
            f"{list(self._ds.data_vars)}"
        )

    def plot_map(self, var: str = "ndvi", time: Any = None, **kwargs: Any) -> Any:
        """An hvplot image of ``var`` in the cube's coordinates (equal aspect, no tiles).

        Parameters
        ----------
        var
            A spectral index (``"ndvi"``, ...), a variable of the dataset or a driver name.
        time
            Date to show (nearest image date or day); None gives a date slider.
        **kwargs
            Passed to ``hvplot.image`` (``cmap``, ``clim``, ``frame_width``...).
        """
        import hvplot.xarray  # noqa: F401

        da = self._map_array(var)
        dim = next((d for d in (schema.TIME_DIM, schema.DAY_DIM) if d in da.dims), None)
        opts: dict[str, Any] = {
            "x": schema.X_DIM,
            "y": schema.Y_DIM,
            "data_aspect": 1,
            "frame_width": 400,
            "xlabel": f"x ({self._crs_label()})",
            "ylabel": "y",
            "title": var,
        }
        if dim is not None:
            if time is None:
                opts["groupby"] = dim
            else:
                da = da.sel({dim: np.datetime64(pd.Timestamp(time))}, method="nearest")
                opts["title"] = f"{var} {pd.Timestamp(da[dim].values).date()}"
        if var.lower() in ("ndvi", "ndwi", "ndmi", "nbr", "ndre", "evi", "savi"):
            opts.update(cmap="RdYlGn", clim=(-1.0, 1.0))
        elif var in (schema.CROP_TYPE, schema.SOIL_TYPE, schema.FIELD_ID):
            opts.update(cmap="Category10")
        opts.update(kwargs)
        return da.hvplot.image(**opts)

    def __repr__(self) -> str:
        from ._repr import summary_rows

        rows = summary_rows(self)
        width = max(len(k) for k, _ in rows)
        lines = [f"<kgvsf_explore.Cube> {rows[0][1]}"]
        lines += [f"  {k + ':':<{width + 1}} {v}" for k, v in rows[1:]]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from ._repr import repr_html

        return repr_html(self)
