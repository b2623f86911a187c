"""Small files in each real product format ingest to the right reflectance and masks; a wrong
scaling rule is refused by the plausibility gate with the fix named."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from kgvsf_explore import schema
from kgvsf_explore.ingest import IngestError, build_cube, ingest, read_images
from kgvsf_explore.ingest.fakes import (
    qa_pixel_from_classes,
    write_landsat_c1_date,
    write_landsat_date,
    write_sentinel2_date,
    write_tif,
)
from kgvsf_explore.ingest.gate import check_reflectance, suggest_rule
from kgvsf_explore.ingest.masks import classes_from
from kgvsf_explore.ingest.scaling import parse_per_band

CRS = "EPSG:32615"
N = 12
T30 = Affine(30.0, 0, 440000.0, 0, -30.0, 4650000.0)
T10 = Affine(10.0, 0, 440000.0, 0, -10.0, 4650000.0)
BANDS6 = ("B02", "B03", "B04", "B08", "B11", "B12")

#: A class layout (Fmask codes) with every class: rows of clear, water, shadow, snow, cloud,
#: fill, then clear.
CLASSES = np.zeros((N, N), np.uint8)
CLASSES[1, :] = 1
CLASSES[2, :] = 2
CLASSES[3, :] = 3
CLASSES[4, :] = 4
CLASSES[5, :] = 255
HIDDEN = np.isin(CLASSES, (2, 3, 4, 255))
#: Sentinel-2 SCL codes of the same classes.
SCL_OF = {0: 4, 1: 6, 2: 3, 3: 11, 4: 9, 255: 0}


def _refl(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {b: (0.03 + 0.05 * i + 0.1 * rng.random((N, N))).astype(np.float32)
            for i, b in enumerate(schema.BANDS)}


def _check(ds, refl: dict[str, np.ndarray], t: int, atol: float) -> None:
    """Bands equal ``refl`` where the classes keep them, NaN where they hide them; flags and
    cloud mask as the classes say."""
    for b in BANDS6:
        got = ds[b].values[t]
        assert np.isnan(got[HIDDEN]).all(), b
        np.testing.assert_allclose(got[~HIDDEN], refl[b][~HIDDEN], atol=atol, err_msg=b)
    np.testing.assert_array_equal(ds[schema.SURFACE_FLAG].values[t], CLASSES)
    np.testing.assert_array_equal(ds[schema.CLOUD_MASK].values[t], np.isin(CLASSES, (2, 4)))


def test_landsat_c1_sr_with_fmask(tmp_path: Path) -> None:
    refl = _refl(1)
    write_landsat_c1_date(tmp_path, pd.Timestamp("2011-07-15"), refl, CLASSES, crs=CRS,
                          transform=T30)
    ds = read_images(tmp_path)
    assert json.loads(ds.attrs["kgvsf_mask_kinds"]) == ["fmask"]
    rule = next(iter(json.loads(ds.attrs["kgvsf_scaling"])))
    assert rule.startswith("x0.0001 +0 (Landsat Collection 1 SR")
    _check(ds, refl, 0, atol=6e-5)
    assert ds[schema.SURFACE_FLAG].attrs["flag_meanings"].split()[3] == "snow"
    check_reflectance(ds)  # plausible: passes


def test_landsat_c2_l2sp_with_qa_pixel(tmp_path: Path) -> None:
    refl = _refl(2)
    write_landsat_date(tmp_path, pd.Timestamp("2022-07-01"), refl,
                       qa_pixel_from_classes(CLASSES), crs=CRS, transform=T30)
    ds = read_images(tmp_path)
    assert json.loads(ds.attrs["kgvsf_mask_kinds"]) == ["qa_pixel"]
    assert next(iter(json.loads(ds.attrs["kgvsf_scaling"]))).startswith(
        "x2.75e-05 -0.2 (Landsat Collection 2 Level-2 SR: L2SP in the name")
    _check(ds, refl, 0, atol=2e-5)


@pytest.mark.parametrize("kind", ["names", "offset_tag"])
def test_sentinel2_before_and_after_the_2022_offset(tmp_path: Path, kind: str) -> None:
    """Baseline 03.00 (2021, no offset) and 04.00 (2022, -1000 DN) in one folder, the
    baseline in the names or (cut-out files) only the BOA_ADD_OFFSET tag; SCL classes."""
    scl = np.vectorize(SCL_OF.get)(CLASSES).astype(np.uint8)
    old, new = _refl(3), _refl(4)
    write_sentinel2_date(tmp_path, pd.Timestamp("2021-06-01"), old, scl, crs=CRS,
                         transform=T10, baseline="N0300", offset_tag=kind == "offset_tag")
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-06-01"), new, scl, crs=CRS,
                         transform=T10, baseline="N0400", offset_tag=kind == "offset_tag")
    ds = read_images(tmp_path)
    rules = json.loads(ds.attrs["kgvsf_scaling"])
    assert {r.split(" (")[0] for r in rules} == {"x0.0001 +0", "x0.0001 -0.1"}
    assert all(("BOA_ADD_OFFSET" in r) == (kind == "offset_tag") for r in rules)
    _check(ds, old, 0, atol=6e-5)
    _check(ds, new, 1, atol=6e-5)
    # snow (SCL 11) is flagged as snow, not as cloud, and hidden
    assert (ds[schema.SURFACE_FLAG].values[0][3] == 3).all()


def test_sentinel2_cloud_probability(tmp_path: Path) -> None:
    prob = np.zeros((N, N), np.uint8)
    prob[:3] = 90   # cloud
    prob[3] = 20    # below the threshold: clear
    refl = _refl(5)
    write_sentinel2_date(tmp_path, pd.Timestamp("2022-06-01"), refl, None, crs=CRS,
                         transform=T10, cloud_prob=prob)
    ds = read_images(tmp_path)
    assert json.loads(ds.attrs["kgvsf_mask_kinds"]) == ["cloud_prob"]
    cloud = ds[schema.CLOUD_MASK].values[0]
    assert cloud[:3].all() and not cloud[3:].any()
    assert np.isnan(ds["B04"].values[0, :3]).all()
    np.testing.assert_allclose(ds["B04"].values[0, 3:], refl["B04"][3:], atol=6e-5)


def test_mask_codes() -> None:
    """The decoders on hand-made codes: SCL, C2 QA_PIXEL bits, C1 pixel_qa bits, Fmask."""
    np.testing.assert_array_equal(classes_from("scl", np.arange(12)),
                                  [255, 255, 0, 2, 0, 0, 1, 0, 4, 4, 4, 3])
    qa = np.array([1, 1 << 6, 1 << 7, 1 << 4, 1 << 5, 1 << 3, 1 << 1, 1 << 2])
    np.testing.assert_array_equal(classes_from("qa_pixel", qa), [255, 0, 1, 2, 3, 4, 4, 4])
    c1 = np.array([1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5])
    np.testing.assert_array_equal(classes_from("pixel_qa", c1), [255, 0, 1, 2, 3, 4])
    with pytest.raises(IngestError, match="not Fmask classes.*mask_kind='qa_pixel'"):
        classes_from("fmask", np.array([0, 64, 322]))


def test_c1_read_with_the_c2_rule_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Collection 1 numbers (x 1e-4) read as Collection 2 (x 2.75e-5 - 0.2) are all negative:
    the gate refuses them before anything is written and names the fix."""
    refl = _refl(6)
    images = tmp_path / "images"
    write_landsat_c1_date(images, pd.Timestamp("2011-07-15"), refl, CLASSES, crs=CRS,
                          transform=T30)
    weather = tmp_path / "w.csv"
    days = pd.date_range("2011-07-01", "2011-07-31")
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "tmin": 15.0, "tmax": 28.0,
                  "prcp": 1.0}).to_csv(weather, index=False)
    out = tmp_path / "c1.zarr"
    with pytest.raises(IngestError) as err:  # before the weather is read
        ingest(out, images, weather, scale=2.75e-5, offset=-0.2)
    text = str(err.value)
    assert "implausible surface reflectance" in text and "nothing was written" in text
    assert "LT05_L1TP_027031_20110715_20110814_01_T1_sr_band3.tif" in text  # files named
    assert re.search(r"B04 .* values -0\.1\d+\.\.-0\.1\d+, mean -0\.1", text)  # seen
    assert "Landsat Collection 1 SR" in text and "--scale 0.0001 --offset 0" in text  # fix
    assert not out.exists()
    # the same files with the fix (or the detected rule) pass
    with pytest.warns(UserWarning):
        cube = build_cube(images, weather, scale=1e-4, offset=0)
    np.testing.assert_allclose(cube.ds["B04"].values[0][~HIDDEN], refl["B04"][~HIDDEN],
                               atol=6e-5)


def test_c1_numbers_under_a_c2_name_are_refused(tmp_path: Path) -> None:
    """A Collection 1 file renamed as Collection 2: the name decides C2, the gate catches it."""
    refl = _refl(7)
    for p in write_landsat_c1_date(tmp_path, pd.Timestamp("2011-07-15"), refl, None,
                                   crs=CRS, transform=T30):
        band = p.name.split("_sr_band")[1].split(".")[0]
        p.rename(p.with_name(f"LT05_L2SP_027031_20110715_20200831_02_T1_SR_B{band}.TIF"))
    ds = read_images(tmp_path)
    with pytest.raises(IngestError, match=r"(?s)B04 .*Landsat Collection 1 SR.*--scale 0.0001"):
        check_reflectance(ds)


def test_sentinel2_offset_applied_to_old_baseline_is_refused() -> None:
    """Dark pixels (water, blue) pushed below -0.05 by a wrong -0.1 offset: the other rule."""
    values = np.r_[np.full(50, 0.01), np.full(50, 0.2)] - 0.1
    assert suggest_rule(values, 1e-4, -0.1, "sentinel2")[0] == "Sentinel-2 L2A, baseline < 04.00"


def test_scale_per_band(tmp_path: Path) -> None:
    refl = _refl(8)
    write_landsat_c1_date(tmp_path, pd.Timestamp("2011-07-15"), refl, None, crs=CRS,
                          transform=T30)
    ds = read_images(tmp_path, scale={"B04": 2e-4})
    np.testing.assert_allclose(ds["B04"].values[0], 2 * refl["B04"], atol=2e-4)
    np.testing.assert_allclose(ds["B08"].values[0], refl["B08"], atol=6e-5)  # rule kept
    assert parse_per_band("1e-4") == 1e-4
    assert parse_per_band("b04=1e-4,B08=2e-4") == {"B04": 1e-4, "B08": 2e-4}
    with pytest.raises(IngestError, match="not cube bands"):
        parse_per_band("B99=1")
    with pytest.raises(IngestError, match="band=number pairs"):
        parse_per_band("x")


def test_generic_mask_layer_needs_its_kind(tmp_path: Path) -> None:
    refl = _refl(9)
    write_landsat_c1_date(tmp_path, pd.Timestamp("2011-07-15"), refl, None, crs=CRS,
                          transform=T30)
    write_tif(tmp_path / "LT05_L1TP_027031_20110715_20110814_01_T1_cloudmask.tif",
              CLASSES, crs=CRS, transform=T30, nodata=255)
    with pytest.raises(IngestError, match="does not say how to read it.*--mask-kind"):
        read_images(tmp_path)
    ds = read_images(tmp_path, mask_kind="fmask")
    _check(ds, refl, 0, atol=6e-5)


def test_symlinked_scene_folders_are_followed(tmp_path: Path) -> None:
    refl = _refl(10)
    store = tmp_path / "archive"
    write_landsat_c1_date(store / "scene1", pd.Timestamp("2011-07-15"), refl, CLASSES,
                          crs=CRS, transform=T30)
    write_landsat_c1_date(store / "scene2", pd.Timestamp("2011-07-31"), refl, CLASSES,
                          crs=CRS, transform=T30)
    folder = tmp_path / "mine"
    folder.mkdir()
    os.symlink(store / "scene1", folder / "scene1")
    os.symlink(store / "scene2", folder / "scene2")
    os.symlink(folder, folder / "loop")  # a cycle is walked once
    ds = read_images(folder)
    assert ds.sizes["time"] == 2
    _check(ds, refl, 1, atol=6e-5)
