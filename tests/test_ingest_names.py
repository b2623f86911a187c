"""File-name dates and bands, reflectance scaling and cloud codes of the ingest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kgvsf_explore.ingest import IngestError
from kgvsf_explore.ingest.masks import qa_pixel_masks, scl_masks
from kgvsf_explore.ingest.names import (
    band_from_name,
    cube_band,
    date_from_name,
    date_from_tags,
    sensor_from_name,
)
from kgvsf_explore.ingest.scaling import reflectance_scaling, to_reflectance

D = pd.Timestamp("2022-07-01")


@pytest.mark.parametrize(
    "name, sensor, band",
    [
        ("S2A_MSIL2A_20220701T165851_N0400_R026_T15TVG_20220701T214413_B04.tif", "sentinel2",
         "B04"),
        ("T15TVG_20220701T165849_B04_10m.tif", "sentinel2", "B04"),
        ("T15TVG_20220701T165849_SCL_20m.jp2", "sentinel2", "scl"),
        ("LC08_L2SP_026031_20220701_20220706_02_T1_SR_B4.TIF", "landsat_oli", "B4"),
        ("LC09_L2SP_026031_20220701_20220706_02_T1_QA_PIXEL.TIF", "landsat_oli", "qa_pixel"),
        ("LT05_L2SP_026031_20220701_20220706_02_T1_SR_B3.TIF", "landsat_tm", "B3"),
        ("LE07_L2SP_026031_20220701_20220706_02_T1_SR_B3.TIF", "landsat_tm", "B3"),
        ("LC80260312022182LGN00_B4.TIF", "landsat_oli", "B4"),  # YYYYDDD scene id
        ("field_2022182_red.tif", None, "red"),  # generic YYYYDDD
        ("stack_2022-07-01.tif", None, None),
        ("stack_20220701.tif", None, None),
    ],
)
def test_dates_sensors_bands_from_names(name: str, sensor: str | None, band: str | None) -> None:
    assert date_from_name(name) == D
    assert sensor_from_name(name) == sensor
    assert band_from_name(name) == band


def test_landsat_processing_date_is_not_taken() -> None:
    # acquisition 2021-12-30, processed 2022-01-06: the first date wins
    assert date_from_name("LC08_L2SP_026031_20211230_20220106_02_T1_SR_B4.TIF") == pd.Timestamp(
        "2021-12-30")


def test_no_date_and_tags() -> None:
    assert date_from_name("mosaic_final_v2.tif") is None
    assert date_from_tags({"TIFFTAG_DATETIME": "2022:07:01 10:30:00"}) == D
    assert date_from_tags({"DATETIME": "2022-07-01T10:30:00Z"}) == D
    assert date_from_tags({"other": "x"}) is None


@pytest.mark.parametrize(
    "token, sensor, cube",
    [("B04", "sentinel2", "B04"), ("B8A", "sentinel2", None), ("B01", "sentinel2", None),
     ("B4", "landsat_oli", "B04"), ("SR_B5", "landsat_oli", "B08"), ("B1", "landsat_oli", None),
     ("B4", "landsat_tm", "B08"), ("SR_B3", "landsat_tm", "B04"), ("B7", "landsat_tm", "B12"),
     ("swir16", None, "B11"), ("nir", None, "B08"), ("rededge1", None, "B05")],
)
def test_band_mapping(token: str, sensor: str | None, cube: str | None) -> None:
    assert cube_band(token, sensor) == cube


def test_ambiguous_landsat_band_needs_sensor() -> None:
    with pytest.raises(IngestError, match="ambiguous.*sensor"):
        cube_band("B4", None)


def _scaling(**kw):
    base = dict(sensor="sentinel2", name="x.tif", tags={}, date=D, dtype=np.dtype("uint16"))
    return reflectance_scaling(**{**base, **kw})[:2]


def test_scaling_rules() -> None:
    assert _scaling(name="S2A_MSIL2A_20220701T1_N0400_R1_B04.tif") == (1e-4, -0.1)
    assert _scaling(name="S2A_MSIL2A_20210701T1_N0300_R1_B04.tif") == (1e-4, 0.0)
    assert _scaling(tags={"BOA_ADD_OFFSET": "-1000"}) == (1e-4, -0.1)
    assert _scaling(date=pd.Timestamp("2021-06-01")) == (1e-4, 0.0)  # before baseline 04.00
    assert _scaling(date=pd.Timestamp("2022-06-01")) == (1e-4, -0.1)
    assert _scaling(sensor="landsat_oli") == (2.75e-5, -0.2)
    assert _scaling(sensor="landsat_tm") == (2.75e-5, -0.2)
    assert _scaling(dtype=np.dtype("float32")) == (1.0, 0.0)
    assert _scaling(file_scale=0.5, file_offset=1.0) == (0.5, 1.0)
    assert _scaling(scale=2e-4) == (2e-4, 0.0)


def test_to_reflectance_nodata_and_offset() -> None:
    dn = np.array([[0, 1000, 3000], [65535, 2000, 11000]], dtype=np.uint16)
    r = to_reflectance(dn, 1e-4, -0.1, nodata=65535)
    assert r.dtype == np.float32
    assert np.isnan(r[1, 0]) and not np.isnan(r[0, 0])
    np.testing.assert_allclose(r[0, 1:], [0.0, 0.2], atol=1e-6)
    r0 = to_reflectance(dn, 2.75e-5, -0.2, nodata=None)  # ints without nodata: 0 is fill
    assert np.isnan(r0[0, 0])
    np.testing.assert_allclose(r0[1, 2], 11000 * 2.75e-5 - 0.2, rtol=1e-6)


def test_scl_codes() -> None:
    scl = np.arange(12)
    cloud, nodata = scl_masks(scl)
    assert list(np.flatnonzero(cloud)) == [3, 8, 9, 10]
    assert list(np.flatnonzero(nodata)) == [0, 1]


def test_qa_pixel_bits() -> None:
    clear = 21824  # Landsat 8 C2 clear land
    qa = np.array([1, clear, clear | 1 << 3, clear | 1 << 4, clear | 1 << 2, clear | 1 << 1])
    cloud, nodata = qa_pixel_masks(qa)
    assert cloud.tolist() == [False, False, True, True, True, True]
    assert nodata.tolist() == [True, False, False, False, False, False]
