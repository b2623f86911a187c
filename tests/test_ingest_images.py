"""Folders of Sentinel-2 / Landsat GeoTIFFs into cube bands: scaling, clouds, grids, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from kgvsf_explore import schema
from kgvsf_explore.ingest import IngestError, missing_bands, read_images, require_bands
from kgvsf_explore.ingest.fakes import write_landsat_date, write_sentinel2_date, write_tif

CRS = "EPSG:32615"
T = Affine(10.0, 0.0, 446000.0, 0.0, -10.0, 4650000.0)
N = 16


def _refl(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {b: (0.05 + 0.03 * i + 0.01 * rng.random((N, N))).astype(np.float32)
            for i, b in enumerate(schema.BANDS)}


def _scl() -> np.ndarray:
    scl = np.full((N, N), 4, np.uint8)  # vegetation
    scl[0, 0], scl[0, 1], scl[0, 2], scl[0, 3] = 3, 8, 9, 10
    scl[1, 0] = 0  # no data
    return scl


def test_sentinel2_folder(tmp_path: Path) -> None:
    refl = _refl()
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-01"), refl, _scl(), crs=CRS,
                         transform=T)
    write_sentinel2_date(tmp_path, pd.Timestamp("2021-07-01"), refl, _scl(), crs=CRS,
                         transform=T, baseline="N0300")
    ds = read_images(tmp_path)
    assert list(ds.time.dt.strftime("%Y-%m-%d").values) == ["2021-07-01", "2022-07-01"]
    assert ds.sizes == {"time": 2, "y": N, "x": N}
    for b in schema.BANDS:
        assert ds[b].dtype == np.float32
        np.testing.assert_allclose(ds[b].values[:, 5, 5], refl[b][5, 5], atol=1e-4)
    cm = ds[schema.CLOUD_MASK].values[1]
    assert cm[0, :4].all() and not cm[0, 4] and not cm[1, 0]  # no data is not a cloud
    assert np.isnan(ds["B04"].values[1, 0, :4]).all() and np.isnan(ds["B04"].values[1, 1, 0])
    assert ds.x.values[0] == 446005.0 and ds.y.values[0] == 4649995.0
    assert "32615" in ds[schema.GRID_MAPPING].attrs["crs_wkt"]
    assert missing_bands(ds) == []
    require_bands(ds)
    scal = json.loads(ds.attrs["kgvsf_scaling"])
    new = "x0.0001 -0.1 (Sentinel-2 L2A, baseline >= 04.00: processing baseline 04.00)"
    old = "x0.0001 +0 (Sentinel-2 L2A, baseline < 04.00: processing baseline 03.00)"
    assert scal[new] == scal[old] == list(schema.BANDS)


def test_landsat_subset_gets_red_edge_interpolated(tmp_path: Path) -> None:
    refl = _refl(1)
    qa = np.full((N, N), 21824, np.uint16)
    qa[2, 2] = 21824 | 1 << 3
    write_landsat_date(tmp_path, pd.Timestamp("2022-07-01"), refl, qa, crs=CRS, transform=T)
    kept = read_images(tmp_path)  # default: the red edge stays missing, masked in the model
    assert json.loads(kept.attrs["kgvsf_missing_bands"]) == ["B05"]
    assert np.isnan(kept["B05"].values).all() and np.isfinite(kept["B04"].values[0, 5, 5])
    ds = read_images(tmp_path, missing_bands="interpolate")
    assert json.loads(ds.attrs["kgvsf_bands_derived"]) == ["B05"]
    assert "B05" not in json.loads(ds.attrs["kgvsf_bands_observed"])
    np.testing.assert_allclose(ds["B04"].values[0, 5, 5], refl["B04"][5, 5], atol=1e-4)
    w = (705 - 665) / (842 - 665)
    want = (1 - w) * refl["B04"][5, 5] + w * refl["B08"][5, 5]
    np.testing.assert_allclose(ds["B05"].values[0, 5, 5], want, atol=1e-4)
    assert "interpolated" in ds["B05"].attrs["kgvsf_derived"]
    assert bool(ds[schema.CLOUD_MASK].values[0, 2, 2]) and np.isnan(ds["B08"].values[0, 2, 2])


def test_missing_bands_error_or_nan(tmp_path: Path) -> None:
    refl = {b: a for b, a in _refl().items() if b in ("B02", "B03", "B04", "B08")}
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-01"), refl, _scl(), crs=CRS,
                         transform=T)
    msg = r"lack band\(s\) \['B11', 'B12'\].*missing_bands='nan'"
    with pytest.raises(IngestError, match=msg):
        read_images(tmp_path, missing_bands="interpolate")
    ds = read_images(tmp_path)  # default: nothing derived, all missing kept NaN
    assert json.loads(ds.attrs["kgvsf_missing_bands"]) == ["B05", "B11", "B12"]
    assert np.isnan(ds["B11"].values).all() and "kgvsf_missing" in ds["B12"].attrs
    assert np.isnan(ds["B05"].values).all() and np.isfinite(ds["B04"].values[0, 5, 5])
    assert missing_bands(ds) == ["B05", "B11", "B12"]
    # the model takes any subset of the bands: only a cube without any band is refused
    assert require_bands(ds) == ["B02", "B03", "B04", "B08"]
    with pytest.raises(IngestError, match=r"observed none of the bands.*at least one band"):
        require_bands(ds.drop_vars(["B02", "B03", "B04", "B08"]))


def test_multiband_file_with_descriptions_and_tag_date(tmp_path: Path) -> None:
    refl = _refl()
    stack = np.stack([np.round(refl[b] * 1e4).astype(np.int16) for b in schema.BANDS])
    write_tif(tmp_path / "mosaic_a.tif", stack, crs=CRS, transform=T, nodata=-9999,
              descriptions=list(schema.BANDS), tags={"DATETIME": "2022:07:01 10:00:00"})
    ds = read_images(tmp_path)
    assert ds.time.values[0] == np.datetime64("2022-07-01")
    np.testing.assert_allclose(ds["B12"].values[0, 3, 3], refl["B12"][3, 3], atol=1e-4)
    assert json.loads(ds.attrs["kgvsf_dates_without_cloud_layer"]) == ["2022-07-01"]


def test_multiband_without_names_needs_band_order(tmp_path: Path) -> None:
    stack = np.full((3, N, N), 1000, np.uint16)
    write_tif(tmp_path / "img_20220701.tif", stack, crs=CRS, transform=T)
    with pytest.raises(IngestError, match="band_order"):
        read_images(tmp_path)


def test_resolutions_and_crs_reprojected(tmp_path: Path) -> None:
    refl = _refl()
    # 20 m bands (B05, B11, B12) on a coarser grid, as in Sentinel-2 L2A
    t20 = Affine(20.0, 0.0, 446000.0, 0.0, -20.0, 4650000.0)
    ten = {b: refl[b] for b in ("B02", "B03", "B04", "B08")}
    twenty = {b: refl[b][::2, ::2] for b in ("B05", "B11", "B12")}
    d = pd.Timestamp("2022-07-01")
    write_sentinel2_date(tmp_path, d, ten, _scl(), crs=CRS, transform=T)
    write_sentinel2_date(tmp_path / "r20", d, twenty, _scl()[::2, ::2], crs=CRS, transform=t20)
    ds = read_images(tmp_path)
    assert ds.sizes["x"] == N and float(ds.x[1] - ds.x[0]) == 10.0
    assert np.isfinite(ds["B11"].values[0, 8, 8])
    # a target resolution and CRS warp everything
    ds2 = read_images(tmp_path, crs="EPSG:32615", resolution=40)
    assert ds2.sizes["x"] == N // 4
    ds3 = read_images(tmp_path, crs="EPSG:3857")
    assert "3857" in ds3[schema.GRID_MAPPING].attrs["crs_wkt"] or "Pseudo" in ds3[
        schema.GRID_MAPPING].attrs["crs_wkt"]
    assert np.isfinite(ds3["B04"].values).mean() > 0.5


def test_mixed_crs_needs_target(tmp_path: Path) -> None:
    refl = _refl()
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-01"), refl, _scl(), crs=CRS,
                         transform=T)
    # the same area in UTM 14N
    t14 = Affine(10.0, 0.0, 944000.0, 0.0, -10.0, 4660000.0)
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-11"), refl, _scl(), crs="EPSG:32614",
                         transform=t14)
    with pytest.raises(IngestError, match=r"2 different CRSs.*crs='EPSG:XXXX'"):
        read_images(tmp_path)


def test_no_overlap(tmp_path: Path) -> None:
    refl = _refl()
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-01"), refl, _scl(), crs=CRS,
                         transform=T)
    far = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-11"), refl, _scl(), crs=CRS,
                         transform=far)
    with pytest.raises(IngestError, match="do not overlap.*bbox"):
        read_images(tmp_path)
    ds = read_images(tmp_path, bbox=(446000, 4649900, 446100, 4650000))
    assert ds.sizes["x"] == 10 and ds.sizes["time"] == 2
    assert np.isnan(ds["B04"].values[1]).all()


def test_geographic_images_suggest_utm(tmp_path: Path) -> None:
    geo = Affine(0.0001, 0.0, -93.6, 0.0, -0.0001, 42.0)
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-07-01"), _refl(), _scl(), crs="EPSG:4326",
                         transform=geo)
    with pytest.raises(IngestError, match="projected CRS.*EPSG:32615"):
        read_images(tmp_path)
    assert read_images(tmp_path, crs="EPSG:32615").sizes["time"] == 1


def test_empty_folder_and_no_date(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no images in"):
        read_images(tmp_path)
    with pytest.raises(IngestError, match="does not exist"):
        read_images(tmp_path / "nope")
    write_tif(tmp_path / "final_B04.tif", np.ones((N, N), np.uint16), crs=CRS, transform=T)
    with pytest.raises(IngestError, match="no date in the file name 'final_B04.tif'.*YYYYMMDD"):
        read_images(tmp_path)
