"""Lazy image reading: dask bands, nothing read before compute, same numbers, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.io
from affine import Affine

import kgvsf_explore as kx
from kgvsf_explore import schema
from kgvsf_explore.cli import main
from kgvsf_explore.ingest import IngestError, build_cube, ingest, read_images
from kgvsf_explore.ingest.build import grid_of
from kgvsf_explore.ingest.fakes import write_landsat_date, write_sentinel2_date, write_tif
from kgvsf_explore.ingest.grid import Grid
from kgvsf_explore.ingest.masks import SCL_CLOUD, SCL_NODATA

CRS = "EPSG:32615"
T = Affine(10.0, 0.0, 446000.0, 0.0, -10.0, 4650000.0)
T20 = Affine(20.0, 0.0, 446000.0, 0.0, -20.0, 4650000.0)
N = 16
DATES = pd.to_datetime(["2022-06-05", "2022-06-15", "2022-06-25"])
TEN = ("B02", "B03", "B04", "B08")
TWENTY = ("B05", "B11", "B12")


def _refl(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """Reflectance of each band, a few pixels NaN (written as the files' no-data 0)."""
    rng = np.random.default_rng(seed)
    out = {b: (0.05 + 0.03 * i + 0.01 * rng.random((n, n))).astype(np.float32)
           for i, b in enumerate(schema.BANDS)}
    for a in out.values():
        a[rng.random((n, n)) < 0.03] = np.nan
    return out


def _scl(seed: int, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    scl = np.full((n, n), 4, np.uint8)  # vegetation
    scl[rng.random((n, n)) < 0.15] = 9  # cloud
    scl[0, :4] = (3, 8, 10, 1)  # shadow, cloud, cirrus, saturated
    scl[1, 0] = 0  # no data
    return scl


def _scl20(seed: int) -> np.ndarray:
    return _scl(seed)[::2, ::2]


@pytest.fixture()
def s2(tmp_path: Path) -> Path:
    """Three Sentinel-2 L2A dates: 10 m bands on the grid, 20 m bands and SCL resampled."""
    folder = tmp_path / "s2"
    for i, d in enumerate(DATES):
        refl = _refl(i)
        write_sentinel2_date(folder, d, {b: refl[b] for b in TEN}, None, crs=CRS, transform=T)
        write_sentinel2_date(folder / "r20", d, {b: refl[b][::2, ::2] for b in TWENTY},
                             _scl20(i), crs=CRS, transform=T20)
    return folder


@pytest.fixture()
def station(tmp_path: Path) -> Path:
    days = pd.date_range("2022-06-01", "2022-06-30", freq="D")
    f = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmax (K)": 300.0, "tmin (K)": 285.0,
                      "precipitation (m)": 0.002, "ssrd (J m-2)": 2.2e7, "d2m (K)": 283.0})
    path = tmp_path / "station.csv"
    f.to_csv(path, index=False)
    return path


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files whose pixels are read (``DatasetReader.read`` calls)."""
    seen: list[str] = []
    real = rasterio.io.DatasetReader.read

    def read(self, *args, **kwargs):
        seen.append(Path(self.name).name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", read)
    return seen


# --------------------------------------------------------------------------------------------
# the eager reference: the previous implementation's warp of a whole file onto the whole grid


def _eager_warp(path: Path, grid: Grid, *, scale: float = 1e-4, offset: float = -0.1,
                mask: bool = False) -> np.ndarray:
    """A whole file read with rasterio and warped onto the whole grid, as ``_warp`` did."""
    from rasterio.warp import Resampling, reproject

    from kgvsf_explore.ingest.scaling import to_reflectance

    with rasterio.open(path) as src:
        raw = src.read(1)
        if mask:
            out = np.zeros((grid.height, grid.width), dtype=raw.dtype)
            reproject(raw, out, src_transform=src.transform, src_crs=src.crs,
                      src_nodata=src.nodata, dst_transform=grid.transform,
                      dst_crs=grid.crs.to_wkt(), dst_nodata=0, resampling=Resampling.nearest)
            return out
        data = to_reflectance(raw, scale, offset, src.nodata)
        out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
        same = src.transform == grid.transform and src.crs.to_wkt() == grid.crs.to_wkt()
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs.to_wkt(), dst_nodata=np.nan,
                  resampling=Resampling.nearest if same else Resampling.bilinear)
        return out


def _eager_bands(folder: Path, grid: Grid) -> dict[str, np.ndarray]:
    """Every band and ``cloud_mask`` of ``folder`` (one file per band and date), eagerly."""
    out: dict[str, list[np.ndarray]] = {}
    for d in DATES:
        day = f"{d:%Y%m%d}"
        scl = _eager_warp(next(folder.rglob(f"*{day}*_SCL.tif")), grid, mask=True)
        cloud, hide = np.isin(scl, SCL_CLOUD), np.isin(scl, SCL_CLOUD + SCL_NODATA)
        out.setdefault(schema.CLOUD_MASK, []).append(cloud)
        for b in schema.BANDS:
            v = _eager_warp(next(folder.rglob(f"*{day}*_{b}.tif")), grid)
            out.setdefault(b, []).append(np.where(hide, np.nan, v).astype(np.float32))
    return {k: np.stack(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# (a) lazy: dask arrays, no pixel read before compute


def test_read_images_is_lazy(s2: Path, reads: list[str], monkeypatch) -> None:
    ds = read_images(s2, tile=8)
    assert reads == []  # headers only
    for v in (*schema.BANDS, schema.CLOUD_MASK):
        assert isinstance(ds[v].data, da.Array), v
        assert ds[v].chunks == ((1, 1, 1), (8, 8), (8, 8))  # one date by 8 x 8 pixels
    assert ds["B04"].dtype == np.float32 and ds[schema.CLOUD_MASK].dtype == bool
    opened: list[str] = []
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting_open)
    sub = ds["B04"].isel(time=1)  # selecting stays lazy
    assert opened == [] and reads == []
    sub.values  # noqa: B018  (computes)
    day = f"{DATES[1]:%Y%m%d}"
    # only the date asked for is read: its B04 and its SCL, one task per 8 x 8 tile
    assert sorted(set(opened)) == sorted(p.name for p in s2.rglob(f"*{day}*_B04.tif")) + sorted(
        p.name for p in s2.rglob(f"*{day}*_SCL.tif"))
    assert len(opened) == 2 * 4


def test_default_chunks_one_date_full_tiles(s2: Path) -> None:
    ds = read_images(s2)
    assert ds["B04"].chunks == ((1, 1, 1), (N,), (N,))  # grid smaller than one 512 tile


def test_header_errors_before_any_pixel_is_read(tmp_path: Path, reads: list[str]) -> None:
    refl, scl = _refl(0), _scl(0)
    write_sentinel2_date(tmp_path / "a", DATES[0], refl, scl, crs=CRS, transform=T)
    t14 = Affine(10.0, 0.0, 944000.0, 0.0, -10.0, 4660000.0)
    write_sentinel2_date(tmp_path / "a", DATES[1], refl, scl, crs="EPSG:32614", transform=t14)
    with pytest.raises(IngestError, match="2 different CRSs"):
        read_images(tmp_path / "a")
    far = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
    write_sentinel2_date(tmp_path / "b", DATES[0], refl, scl, crs=CRS, transform=T)
    write_sentinel2_date(tmp_path / "b", DATES[1], refl, scl, crs=CRS, transform=far)
    with pytest.raises(IngestError, match="do not overlap"):
        read_images(tmp_path / "b")
    with pytest.raises(IngestError, match="no valid pixel inside the cube's area"):
        read_images(tmp_path / "b", bbox=(470000, 4649000, 471000, 4650000))  # between them
    (tmp_path / "c").mkdir()
    with pytest.raises(IngestError, match="no images in"):
        read_images(tmp_path / "c")
    write_tif(tmp_path / "c" / "final_B04.tif", np.ones((N, N), np.uint16), crs=CRS, transform=T)
    with pytest.raises(IngestError, match="no date in the file name 'final_B04.tif'"):
        read_images(tmp_path / "c")
    assert reads == []


# --------------------------------------------------------------------------------------------
# (b) the same numbers as the eager path


@pytest.mark.parametrize("tile", [512, 8, 5])
@pytest.mark.parametrize("bbox", [None, (446010, 4649850, 446150, 4649990)])
def test_lazy_equals_eager(s2: Path, tile: int, bbox) -> None:
    # (the bbox starts one 10 m pixel inside a 20 m pixel)
    ds = read_images(s2, tile=tile, bbox=bbox)
    want = _eager_bands(s2, grid_of(ds))
    for v, arr in want.items():
        got = ds[v].values
        assert got.dtype == arr.dtype, v
        np.testing.assert_array_equal(got, arr, err_msg=v)  # NaN-equal, bit for bit
    if bbox is None:  # the 20 m bands: interpolated between pixels of the same reflectance
        refl = _refl(0)
        b11 = ds["B11"].values[0]
        ok = np.isfinite(b11) & np.isfinite(refl["B11"])
        assert ok.mean() > 0.5
        np.testing.assert_allclose(b11[ok], refl["B11"][ok], atol=0.011)


def test_synchronous_scheduler_same_as_threads(s2: Path) -> None:
    ds = read_images(s2, tile=8)
    with dask.config.set(scheduler="synchronous"):
        one = ds.compute()
    many = ds.compute(scheduler="threads")
    for v in (*schema.BANDS, schema.CLOUD_MASK):
        np.testing.assert_array_equal(one[v].values, many[v].values, err_msg=v)


def test_resampled_grids_tile_independent(s2: Path) -> None:
    # a coarser grid in the same CRS: the same whatever the tiles
    a = read_images(s2, resolution=20).compute()
    b = read_images(s2, resolution=20, tile=5).compute()
    for v in schema.BANDS:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)
    # another CRS: GDAL approximates the transform to 1/8 pixel within each warp chunk
    a = read_images(s2, crs="EPSG:32614").isel(time=0).compute()
    b = read_images(s2, crs="EPSG:32614", tile=8).isel(time=0).compute()
    both = np.isfinite(a["B04"].values) & np.isfinite(b["B04"].values)
    assert both.mean() > 0.5
    np.testing.assert_allclose(a["B04"].values[both], b["B04"].values[both], atol=5e-3)


def test_landsat_red_edge_derived_lazily(tmp_path: Path) -> None:
    refl = _refl(1)
    qa = np.full((N, N), 21824, np.uint16)
    qa[2, 2] = 21824 | 1 << 3
    write_landsat_date(tmp_path, DATES[0], refl, qa, crs=CRS, transform=T)
    ds = read_images(tmp_path, tile=4, missing_bands="interpolate")
    assert isinstance(ds["B05"].data, da.Array)
    w = np.float32((705 - 665) / (842 - 665))
    lo, hi = ds["B04"].values[0], ds["B08"].values[0]
    np.testing.assert_allclose(ds["B05"].values[0], (1 - w) * lo + w * hi, rtol=1e-6)
    assert np.isnan(ds["B05"].values[0, 2, 2]) and bool(ds[schema.CLOUD_MASK].values[0, 2, 2])
    assert json.loads(ds.attrs["kgvsf_bands_derived"]) == ["B05"]


def test_tiles_of_one_date_merged(tmp_path: Path) -> None:
    """Two Sentinel-2 tiles of one date, each with its SCL: each fills its half."""
    west, east = _refl(0), _refl(1)
    scl = np.full((N, N), 4, np.uint8)
    scl[3, 3] = 9
    write_sentinel2_date(tmp_path, DATES[0], west, scl, crs=CRS, transform=T, tile="T15TVG")
    te = Affine(10.0, 0.0, 446000.0 + 10 * N, 0.0, -10.0, 4650000.0)
    write_sentinel2_date(tmp_path, DATES[0], east, scl, crs=CRS, transform=te, tile="T15TWG")
    ds = read_images(tmp_path, bbox=(446000, 4650000 - 10 * N, 446000 + 20 * N, 4650000),
                     tile=7)
    assert ds.sizes == {"time": 1, "y": N, "x": 2 * N}
    b04 = ds["B04"].values[0]
    want = np.concatenate([west["B04"], east["B04"]], axis=1)
    want[3, 3] = want[3, N + 3] = np.nan  # the clouds
    # each half from its tile: the other tile's footprint does not hide a pixel
    np.testing.assert_allclose(b04, want, atol=1e-4)
    cloud = ds[schema.CLOUD_MASK].values[0]
    assert cloud[3, 3] and cloud[3, N + 3] and cloud.sum() == 2


# --------------------------------------------------------------------------------------------
# (c) the cube written by ingest


def test_ingested_cube_from_first_principles(s2: Path, station: Path, tmp_path: Path,
                                             capsys) -> None:
    out = ingest(tmp_path / "c.zarr", s2, station, progress=True)
    assert "100%" in capsys.readouterr().err  # the progress bar
    cube = kx.open_cube(out)
    ds = cube.ds
    assert ds["B04"].chunks == ((1, 1, 1), (N,), (N,))  # stored one date a chunk
    for i, d in enumerate(DATES):
        refl, scl = _refl(i), np.repeat(np.repeat(_scl20(i), 2, axis=0), 2, axis=1)  # nearest
        hide = np.isin(scl, SCL_CLOUD + SCL_NODATA)
        np.testing.assert_array_equal(ds[schema.CLOUD_MASK].values[i], np.isin(scl, SCL_CLOUD))
        for b in TEN:  # on the grid: the scaled integers, NaN where hidden or no data
            dn = np.where(np.isnan(refl[b]), 0, np.round((refl[b] + 0.1) * 1e4))
            want = dn.astype(np.uint16).astype(np.float32) * np.float32(1e-4) + np.float32(-0.1)
            want[(dn == 0) | hide] = np.nan
            np.testing.assert_array_equal(ds[b].values[i], want, err_msg=f"{b} {d:%Y-%m-%d}")
        for b in TWENTY:  # 20 m: NaN where hidden, reflectance of the area elsewhere
            v = ds[b].values[i]
            assert np.isnan(v[hide]).all(), b
            ok = np.isfinite(v) & np.isfinite(refl[b])
            assert ok.mean() > 0.5
            np.testing.assert_allclose(v[ok], refl[b][ok], atol=0.011)
    # everything else as build_cube makes it
    ref = build_cube(s2, station).ds.compute()
    for v in ref.data_vars:
        np.testing.assert_array_equal(ds[v].values, ref[v].values, err_msg=str(v))
    assert ds.attrs["kgvsf_scaling"] == ref.attrs["kgvsf_scaling"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ingest_folder_layout_and_overwrite(s2: Path, station: Path, tmp_path: Path) -> None:
    path = ingest(tmp_path / "cube_dir", s2, station)
    assert (path / "cube.zarr").is_dir()
    with pytest.raises(FileExistsError, match="exists"):
        ingest(tmp_path / "cube_dir", s2, station)
    ingest(tmp_path / "cube_dir", s2, station, overwrite=True)
    assert kx.open_cube(path).ds.sizes["time"] == 3


# --------------------------------------------------------------------------------------------
# (d) unreadable files: the ingest's error, naming the file; nothing written


def _truncate(path: Path, keep: float) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def test_truncated_tiff_clear_error(tmp_path: Path, station: Path, capsys) -> None:
    folder = tmp_path / "s2"
    n = 128  # big enough for its pixels to lie after the header
    for i, d in enumerate(DATES):
        write_sentinel2_date(folder, d, _refl(i, n), _scl(i, n), crs=CRS, transform=T)
    bad = next(folder.glob(f"*{DATES[1]:%Y%m%d}*_B08.tif"))
    _truncate(bad, 0.5)
    ds = read_images(folder)  # the header still reads: lazy, no error yet
    with pytest.raises(IngestError, match=f"cannot read {bad.name} .*truncated"):
        ds["B08"].values  # noqa: B018
    out = tmp_path / "c.zarr"
    with pytest.raises(IngestError, match=f"cannot read {bad.name}"):
        ingest(out, folder, station, validate=False)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    rc = main(["ingest", "--images", str(folder), "--weather", str(station), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and bad.name in err and "Traceback" not in err and "dask" not in err
    assert not out.exists()
    # a file cut inside its header fails at once, before any pixel is read
    _truncate(bad, 0.01)
    with pytest.raises(IngestError, match=f"cannot read {bad.name}"):
        read_images(folder)


def test_all_nodata_images_write_nothing(tmp_path: Path, station: Path) -> None:
    folder = tmp_path / "s2"
    empty = {b: np.full((N, N), np.nan, np.float32) for b in schema.BANDS}
    for d in DATES[:2]:
        write_sentinel2_date(folder, d, empty, np.full((N, N), 4, np.uint8), crs=CRS,
                             transform=T)
    out = tmp_path / "c.zarr"
    with pytest.raises(IngestError, match="no valid pixel inside the cube's area"):
        ingest(out, folder, station, validate=False)
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
