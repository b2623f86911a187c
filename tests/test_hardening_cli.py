"""Hardening of ``kgvsf forecast`` and its arguments: no data loss, clear errors, the real start.

Every test here failed before the hardening: a foreign ``--out`` folder was deleted, a kill
between the steps of a replacement lost both stores, bad option values raised bare Python
errors, ``--bbox -93.6,...`` was an argparse error, a time zone was a ``TypeError``, a start long
after the last image was silent, and ``--out existing_file`` failed after the whole forecast.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import kgvsf_explore as kx
from kgvsf_explore import _atomic
from kgvsf_explore.cli import main
from kgvsf_explore.errors import KGVSFError

CUBE = str(kx.sample_path())
BBOX = "446005,4649600,446300,4650000"  # a corner of the shipped sample: a quick forecast


def _forecast(out: Path | str, *extra: str) -> int:
    return main(["forecast", "--cube", CUBE, "--start", "2022-07-01", "--horizons", "5",
                 "--bbox", BBOX, "--out", str(out), "--quiet", *extra])


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return folder


def test_forecast_never_deletes_a_folder_it_did_not_write(user_folder: Path, capsys) -> None:
    before = _tree(user_folder)
    assert _forecast(user_folder) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "--overwrite" in err and "did not write" in err
    assert _tree(user_folder) == before


def test_overwrite_replaces_a_foreign_folder_on_request(user_folder: Path) -> None:
    assert _forecast(user_folder, "--overwrite") == 0
    assert not (user_folder / "notes.txt").exists()
    assert _atomic.is_ours(user_folder)
    assert list(xr.open_zarr(user_folder, consolidated=False).horizon.values) == [5]


def test_out_dot_and_inputs_are_refused_even_with_overwrite(tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert _forecast(".", "--overwrite") == 2
    assert "working folder" in capsys.readouterr().err
    assert _forecast(tmp_path.parent, "--overwrite") == 2
    assert (tmp_path / "keep.txt").read_text() == "x"
    assert _forecast(Path(CUBE) / "cube.zarr", "--overwrite") == 2
    assert "input" in capsys.readouterr().err
    assert (Path(CUBE) / "cube.zarr").is_dir()


def test_a_store_kgvsf_wrote_is_replaced_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "f.zarr"
    assert _forecast(out) == 0
    assert _atomic.is_ours(out)
    assert main(["forecast", "--cube", CUBE, "--start", "2022-07-01", "--horizons", "3,7",
                 "--bbox", BBOX, "--out", str(out), "--quiet"]) == 0
    assert list(xr.open_zarr(out, consolidated=False).horizon.values) == [3, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


def test_out_existing_file_fails_before_any_work(tmp_path: Path, monkeypatch, capsys) -> None:
    target = tmp_path / "existing"
    target.write_text("precious")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(kx.Forecaster, "from_pretrained", no_model)
    assert _forecast(target) == 2
    assert "existing file" in capsys.readouterr().err
    assert target.read_text() == "precious"


_KILL = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    from kgvsf_explore import _atomic
    target = Path(sys.argv[1])
    real_replace, real_rmtree = os.replace, shutil.rmtree
    calls = []
    def step(real):
        def wrapped(*args, **kwargs):
            if Path(args[0]).parent == target.parent:  # the three steps, not zarr's own writes
                calls.append(args[0])
            if len(calls) == {n}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapped
    os.replace = step(real_replace)
    shutil.rmtree = step(real_rmtree)
    def write(tmp):
        tmp.mkdir()
        (tmp / "zarr.json").write_text('{{"zarr_format": 3, "node_type": "group", '
                                       '"attributes": {{}}}}')
        (tmp / "data").write_text("new")
    _atomic.write_output_dir(target, write, kind="forecast")
""")


@pytest.mark.parametrize("n, expect", [(1, "old"), (2, "new"), (3, "new")])
def test_a_kill_during_a_replacement_is_recovered_on_the_next_run(tmp_path: Path, n: int,
                                                                   expect: str) -> None:
    """``kill -9`` inside the rename-aside / move-in / delete-old sequence loses nothing."""
    target = tmp_path / "f.zarr"

    def old_store(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", '
                                       '"attributes": {}}')
        (tmp / "data").write_text("old")

    _atomic.write_output_dir(target, old_store)
    # killed at step n: 1 rename aside, 2 move in, 3 delete the old store
    proc = subprocess.run([sys.executable, "-c", _KILL.format(n=n), str(target)],
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert len(list(tmp_path.iterdir())) == 2  # what the kill left: two stores, one hidden
    with pytest.warns(UserWarning, match="interrupted|unfinished"):
        _atomic.check_output(target)
    # before the move-in the old store stays; after it the new (complete, marked) one
    assert (target / "data").read_text() == expect
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]


def test_an_old_store_renamed_aside_is_restored(tmp_path: Path) -> None:
    target = tmp_path / "f.zarr"
    aside = tmp_path / ".f.zarr.old-0123abcd"
    aside.mkdir()
    (aside / "data").write_text("old")
    with pytest.warns(UserWarning, match="restored"):
        _atomic.recover_dir(target)
    assert (target / "data").read_text() == "old" and not aside.exists()


@pytest.mark.parametrize("args, option", [
    (["--horizons", "2.5"], "--horizons"), (["--horizons", "abc"], "--horizons"),
    (["--horizons", "5,5"], "--horizons"), (["--horizons", "0"], "--horizons"),
    (["--chunks", "abc"], "--chunks"), (["--chunks", "-3"], "--chunks"),
    (["--bbox", "1,2,3"], "--bbox"), (["--bbox", "3,2,1,4"], "--bbox"),
    (["--bbox", "nan,1,2,3"], "--bbox"), (["--start", "2022-13-45"], "--start"),
    (["--start", "1000-01-01"], "--start"),
])
def test_bad_option_values_are_usage_errors_naming_the_option(args, option, tmp_path,
                                                               capsys) -> None:
    base = {"--start": "2022-07-01", "--horizons": "5"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["forecast", "--cube", CUBE, "--out", str(tmp_path / "f.zarr"), "--quiet"]
    for flag, value in base.items():
        argv += [flag, value]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and "invalid literal" not in err
    assert not (tmp_path / "f.zarr").exists()


def test_bbox_takes_negative_numbers_after_a_space(tmp_path: Path, capsys) -> None:
    code = main(["forecast", "--cube", CUBE, "--start", "2022-07-01", "--bbox",
                 "-93.6,41.2,-93.5,41.3", "--out", str(tmp_path / "f.zarr"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "lies outside the cube" in err and "expected one argument" not in err


def test_start_with_a_time_zone_is_converted_and_the_real_start_is_printed(
        tmp_path: Path, capsys) -> None:
    out = tmp_path / "f.zarr"
    assert main(["forecast", "--cube", CUBE, "--start", "2022-07-01T12:00+05:00", "--horizons",
                 "5", "--bbox", BBOX, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "forecast from 2022-06-28 (the last image on or before --start" in printed
    assert xr.open_zarr(out, consolidated=False).attrs["t"] == "2022-06-28"


@pytest.fixture(scope="module")
def fc() -> kx.Forecaster:
    return kx.Forecaster.from_pretrained()


def test_a_start_long_after_the_last_image_warns(fc) -> None:
    from kgvsf_explore.errors import StartDateWarning

    cube = kx.open_cube(CUBE)
    early = kx.Cube(cube.ds.sel(time=slice(None, "2022-07-10")))
    bbox = tuple(float(v) for v in BBOX.split(","))
    with pytest.warns(StartDateWarning, match="2022-07-08"):
        out = fc.forecast(early, bbox, "2022-12-01", (5,), progress=False)
    assert out.attrs["t"] == "2022-07-08"


def test_the_api_takes_time_zones_and_refuses_duplicate_horizons(fc) -> None:
    cube = kx.open_cube(CUBE)
    bbox = tuple(float(v) for v in BBOX.split(","))
    import pandas as pd

    out = fc.forecast(cube, bbox, pd.Timestamp("2022-07-01 03:00", tz="Asia/Tokyo"), (5,),
                      progress=False)
    assert out.attrs["t"] == "2022-06-28" and bool(np.isfinite(out.ndvi).all())
    with pytest.raises(KGVSFError, match="more than once"):
        fc.forecast(cube, bbox, "2022-07-01", (5, 5), progress=False)


def test_check_output_reports_unwritable_places(tmp_path: Path) -> None:
    from kgvsf_explore.errors import OutputPathError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        _atomic.check_output(blocker / "f.zarr")
