"""Gap filling: Forecaster.fill, the FillHead, hide_dates and ``kgvsf fill``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from kgvsf_explore import schema
from kgvsf_explore.cli import main
from kgvsf_explore.cube.cube import Cube
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.evaluation.peers.history import PixelHistory
from kgvsf_explore.forecaster import Forecaster
from kgvsf_explore.heads import FillHead, cloudy_dates, hide_dates
from kgvsf_explore.models import KGVSF, PRESETS
from kgvsf_explore.world import make_world

FAST = {"train_dates": 8, "pixels_per_date": 400, "progress": False}


def fast() -> dict:
    """FAST with an unfitted head of fewer trees (fill fits it with its settings)."""
    return {**FAST, "head": FillHead(max_iter=40, seed=0)}


@pytest.fixture(scope="module")
def cube() -> Cube:
    ds, fields = make_world(seed=31, size="tiny")
    return Cube(ds.load(), fields=fields)


@pytest.fixture(scope="module")
def fc() -> Forecaster:
    torch.manual_seed(0)
    return Forecaster(KGVSF(PRESETS["tiny"].model, "kgvsf").eval(), weights_id="ab12" * 16)


def clear_dates(cube: Cube, n: int, start: str = "2022-05-01") -> list[pd.Timestamp]:
    """``n`` fully clear image dates from ``start`` on, each with an image 1-60 days before."""
    frac = cube.valid.mean(("y", "x")).values
    out = [t for j, t in enumerate(cube.times) if j and t >= pd.Timestamp(start)
           and frac[j] == 1.0 and 1 <= (t - cube.times[j - 1]).days <= 60]
    return out[:n]


@pytest.fixture(scope="module")
def gaps(cube: Cube) -> list[pd.Timestamp]:
    return clear_dates(cube, 3)


@pytest.fixture(scope="module")
def filled(fc: Forecaster, cube: Cube, gaps) -> xr.Dataset:
    return fc.fill(cube, None, gaps, **fast())


def test_fill_dims_coords_attrs_and_finite(filled: xr.Dataset, cube: Cube, gaps) -> None:
    assert filled.reflectance.dims == ("time", "band", "y", "x")
    assert filled.ndvi.dims == ("time", "y", "x")
    assert list(filled.band.values) == list(schema.BANDS)
    assert pd.DatetimeIndex(filled.time.values).equals(pd.DatetimeIndex(gaps))
    np.testing.assert_array_equal(filled.y.values, cube.ds.y.values)
    np.testing.assert_array_equal(filled.x.values, cube.ds.x.values)
    assert "spatial_ref" in filled.coords
    assert filled.attrs["weights_sha256"] == "ab12" * 16
    assert filled.attrs["fill_train_pixels"] > 0
    assert not set(filled.attrs["fill_train_dates"].split(", ")) & {
        str(t.date()) for t in gaps}
    assert np.isfinite(filled.ndvi.values).all()
    assert np.isfinite(filled.reflectance.sel(band="B04").values).all()


def test_fill_starts_from_linear_interpolation_and_stays_near_the_truth(
        filled: xr.Dataset, cube: Cube, gaps) -> None:
    """Scored against the simulator's cloud-free truth: the head corrects linear
    interpolation, so on this small cube (few pixels to learn from, an untrained network) it
    stays within twice its error and close to the truth on every date."""
    hist = PixelHistory.from_cube(hide_dates(cube, gaps))
    keep = [i for i, b in enumerate(schema.BANDS) if b != "B05"]
    rr, cc = (a.ravel() for a in np.mgrid[0:32, 0:32])
    for t in gaps:
        truth = cube.truth.sel(time=t).values[keep]
        lin, _ = hist.interpolate((t - pd.Timestamp("1970-01-01")).days, rr, cc)
        lin = lin.T.reshape(len(schema.BANDS), 32, 32)[keep]
        mine = filled.reflectance.sel(time=t).values[keep]
        ok = np.isfinite(lin).all(0)
        assert ok.mean() > 0.9
        fill_mse = np.mean((mine - truth)[:, ok] ** 2)
        lin_mse = np.mean((lin - truth)[:, ok] ** 2)
        assert fill_mse < 2 * lin_mse, (t, fill_mse, lin_mse)
        assert fill_mse < 1e-3


def test_the_date_to_fill_never_informs_its_own_fill(fc: Forecaster, cube: Cube, gaps,
                                                    filled: xr.Dataset) -> None:
    """Overwrite the images at the dates to fill: the fill does not change."""
    ds = cube.ds.copy(deep=True)
    at = ds.time.isin(pd.DatetimeIndex(gaps).values)
    for b in cube.bands:
        ds[b] = ds[b].where(~at, 0.9)
    again = fc.fill(Cube(ds, fields=cube.fields), None, gaps, **fast())
    xr.testing.assert_allclose(again.reflectance, filled.reflectance)


def test_fill_is_seeded_and_leaves_the_cube_untouched(fc: Forecaster, cube: Cube, gaps,
                                                      filled: xr.Dataset) -> None:
    before = cube.ds[schema.CLOUD_MASK].values.copy()
    again = fc.fill(cube, None, gaps, **fast())
    xr.testing.assert_identical(again, filled)
    np.testing.assert_array_equal(cube.ds[schema.CLOUD_MASK].values, before)


def test_a_day_between_images_and_a_region(fc: Forecaster, cube: Cube, gaps) -> None:
    j = int(np.searchsorted(cube.times, gaps[0]))
    day = cube.times[j - 1] + (cube.times[j] - cube.times[j - 1]) / 2
    day = day.normalize()
    assert day not in cube.times
    xs, ys = cube.ds.x.values, cube.ds.y.values
    bbox = (xs[4], ys[20], xs[19], ys[4])
    out = fc.fill(cube, bbox, str(day.date()), **fast())
    assert out.sizes["time"] == 1 and out.sizes["y"] == 17 and out.sizes["x"] == 16
    assert np.isfinite(out.ndvi.values).all()


def test_default_dates_are_the_cloudy_ones(fc: Forecaster, cube: Cube) -> None:
    dates = cloudy_dates(cube)
    frac = cube.valid.mean(("y", "x")).values
    want = [t for j, t in enumerate(cube.times) if j and frac[j] < 0.5]
    assert dates == want
    with pytest.raises(KGVSFError, match="less than 0% clear"):
        cloudy_dates(cube, max_clear=0.0)


def test_hide_dates_marks_only_those_dates(cube: Cube, gaps) -> None:
    hidden = hide_dates(cube, gaps[:1])
    valid = hidden.valid.values
    j = int(np.searchsorted(cube.times, gaps[0]))
    assert not valid[j].any()
    np.testing.assert_array_equal(np.delete(valid, j, 0),
                                  np.delete(cube.valid.values, j, 0))
    assert hide_dates(cube, [pd.Timestamp("1999-01-01")]) is cube


@pytest.mark.parametrize(("dates", "match"), [
    ("2020-01-01", "after the cube's first image"),
    ("2030-01-01", "within its weather"),
    (["2022-06-01", "2022-06-01"], "repeat"),
    ("not a date", "give dates such as"),
    ([], "no date to fill"),
])
def test_bad_dates_say_what_is_wrong(fc: Forecaster, cube: Cube, dates, match) -> None:
    with pytest.raises(KGVSFError, match=match):
        fc.fill(cube, None, dates, **fast())


def test_too_few_clear_dates_to_learn_from(fc: Forecaster, cube: Cube) -> None:
    ds = cube.ds.copy()
    ds[schema.CLOUD_MASK] = xr.ones_like(ds[schema.CLOUD_MASK])
    with pytest.raises(KGVSFError, match="at least 2 image dates"):
        fc.fill(Cube(ds, fields=cube.fields), None, ["2022-06-01"], **fast())


def test_a_fitted_head_is_reused(fc: Forecaster, cube: Cube, gaps, filled) -> None:
    head = FillHead(max_iter=40, seed=0)
    assert "not fitted" in repr(head)
    first = fc.fill(cube, None, gaps, head=head, **FAST)  # unfitted: fitted with its settings
    assert "fitted on" in repr(head) and head.params["max_iter"] == 40
    xr.testing.assert_allclose(first.reflectance, filled.reflectance)
    models = list(head.models)
    again = fc.fill(cube, None, gaps, head=head, progress=False)  # fitted: reused as it is
    assert all(a is b for a, b in zip(head.models, models, strict=True))
    xr.testing.assert_allclose(again.reflectance, filled.reflectance)


def test_cli_fill_writes_a_store(tmp_path, cube: Cube, gaps, capsys) -> None:
    path = tmp_path / "cube.zarr"
    cube.ds.to_zarr(path, mode="w", consolidated=False)
    out = tmp_path / "filled.zarr"
    dates = ",".join(str(t.date()) for t in gaps[:2])
    rc = main(["fill", "--cube", str(path), "--dates", dates, "--train-dates", "4",
               "--pixels-per-date", "200", "--out", str(out), "--quiet"])
    assert rc == 0
    got = xr.open_zarr(out, consolidated=False)
    assert got.sizes["time"] == 2 and np.isfinite(got.ndvi.values).all()
    assert "filled 2 date(s)" in capsys.readouterr().out
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    rc = main(["fill", "--cube", str(path), "--dates", dates, "--out", str(tmp_path / "mine"),
               "--quiet"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "mine" / "keep.txt").exists()


def test_scorecard_gaps_skip_the_fill_row_with_the_reason(fc: Forecaster, cube: Cube,
                                                          gaps, monkeypatch) -> None:
    """A cube the fill head cannot learn from still scores the other gap-filling methods."""
    from kgvsf_explore.evaluation.peers.drivers import DriverSums
    from kgvsf_explore.evaluation.scorecard.gapfill import score_gaps
    from kgvsf_explore.heads import fill as fill_mod

    def no_fit(*args, **kwargs):
        raise KGVSFError("need at least 2 image dates with clear pixels to learn from")

    monkeypatch.setattr(fill_mod, "fill_region", no_fit)
    dates = [int(np.flatnonzero(cube.times == t)[0]) for t in gaps[:1]]
    errors = score_gaps(fc.model, cube, dates, PixelHistory.from_cube(cube), DriverSums(cube),
                        None, slice(0, 16), slice(0, 16))
    assert "at least 2 image dates" in errors.attrs["fill_skipped"]
    assert "linear_interpolation" in set(errors["method"])
    assert not any(m.endswith("-fill") for m in errors["method"])


def test_the_gate_only_shrinks_the_correction(fc: Forecaster, cube: Cube, gaps,
                                              filled: xr.Dataset) -> None:
    """Gated (the default), every pixel's correction to linear interpolation is the ungated
    one scaled by a factor in [0, 1]: never larger, never of the other sign."""
    from kgvsf_explore.evaluation.peers.drivers import DriverSums
    from kgvsf_explore.heads.fill import _Context, fill_region

    hidden = hide_dates(cube, gaps)
    hist = PixelHistory.from_cube(hidden)
    ctx = _Context(fc.model, hidden, hist, DriverSums(hidden), slice(0, 32), slice(0, 32))
    free = FillHead(seed=0, gate=False, max_iter=40).fit(  # as fast()'s head, ungated
        ctx, None, train_dates=FAST["train_dates"], pixels_per_date=FAST["pixels_per_date"],
        progress=False)
    ungated = fill_region(fc.model, cube, gaps, head=free, progress=False)
    rr, cc = (a.ravel() for a in np.mgrid[0:32, 0:32])
    for t in gaps:
        lin, _ = hist.interpolate((t - pd.Timestamp("1970-01-01")).days, rr, cc)
        lin = lin.T.reshape(len(schema.BANDS), 32, 32)
        gated = filled.reflectance.sel(time=t).values - lin
        plain = ungated.reflectance.sel(time=t).values - lin
        ok = np.isfinite(lin) & np.isfinite(plain)
        assert (np.abs(gated[ok]) <= np.abs(plain[ok]) + 1e-6).all()
        assert (gated[ok] * plain[ok] >= -1e-9).all()
        assert np.abs(gated[ok]).sum() < np.abs(plain[ok]).sum()  # the gate does something
