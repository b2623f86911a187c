"""A local STAC ItemCollection of small GeoTIFF assets into cube bands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from kgvsf_explore import schema
from kgvsf_explore.ingest import IngestError, build_cube
from kgvsf_explore.ingest.fakes import write_tif
from kgvsf_explore.ingest.stac import read_items

CRS = "EPSG:32615"
T = Affine(10.0, 0.0, 446000.0, 0.0, -10.0, 4650000.0)
N = 8
EARTH_SEARCH = {"B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B08": "nir",
                "B11": "swir16", "B12": "swir22"}


def _collection(tmp_path: Path, dates: list[str]) -> Path:
    feats = []
    for d in dates:
        assets = {}
        for i, (band, key) in enumerate(EARTH_SEARCH.items()):
            dn = np.full((N, N), 1000 + 100 * i, np.uint16)  # 0.1 + 0.01 i - 0.1 (offset)
            write_tif(tmp_path / d / f"{band}.tif", dn, crs=CRS, transform=T, nodata=0)
            assets[key] = {"href": f"{d}/{band}.tif", "type": "image/tiff",
                           "eo:bands": [{"name": band, "common_name": key}],
                           "raster:bands": [{"scale": 1e-4, "offset": -0.1, "nodata": 0}]}
        scl = np.full((N, N), 4, np.uint8)
        scl[0, 0] = 8
        write_tif(tmp_path / d / "SCL.tif", scl, crs=CRS, transform=T, nodata=0)
        assets["scl"] = {"href": f"{d}/SCL.tif"}
        assets["thumbnail"] = {"href": "https://example.org/x.jpg"}
        feats.append({"type": "Feature", "id": f"S2A_15TVG_{d}", "properties": {
            "datetime": f"{d}T17:00:00Z", "platform": "sentinel-2a",
            "s2:processing_baseline": "04.00"}, "assets": assets})
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_read_items(tmp_path: Path) -> None:
    ds = read_items(_collection(tmp_path, ["2022-07-11", "2022-07-01"]))
    assert list(pd.DatetimeIndex(ds.time.values).strftime("%m-%d")) == ["07-01", "07-11"]
    for i, b in enumerate(schema.BANDS):
        np.testing.assert_allclose(ds[b].values[0, 4, 4], 0.01 * i, atol=1e-6)
    assert bool(ds[schema.CLOUD_MASK].values[0, 0, 0]) and np.isnan(ds["B04"].values[0, 0, 0])
    assert "STAC raster:bands" in next(iter(json.loads(ds.attrs["kgvsf_scaling"])))


def test_build_cube_from_items(tmp_path: Path) -> None:
    items = _collection(tmp_path, ["2022-07-01"])
    days = pd.date_range("2022-06-25", "2022-07-05")
    pd.DataFrame({"date": days, "tmax (degC)": 25.0, "tmin (degC)": 12.0, "prcp (mm)": 0.0,
                  "srad (W/m2)": 300.0, "vp (Pa)": 1200.0}).to_csv(tmp_path / "w.csv",
                                                                    index=False)
    cube = build_cube(items, tmp_path / "w.csv")
    assert cube.ds.sizes["time"] == 1


def test_bad_collections(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        read_items(tmp_path / "none.json")
    (tmp_path / "x.json").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "a", "properties": {"datetime": "2022-07-01T00:00:00Z"},
         "assets": {"red": {"href": "https://example.org/B04.tif"}}}]}))
    with pytest.raises(IngestError, match="not a local file.*download the assets"):
        read_items(tmp_path / "x.json")
