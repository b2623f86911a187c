"""Property-based fuzzing: scenario JSON, ``kgvsf`` arguments and cube validation.

Whatever hypothesis throws at them, the toolkit gives a clear :class:`KGVSFError` (or an
argparse usage error, exit status 2) or a result: never another exception, and never a change to
the input files. Examples are derandomized (the same on every run) and the whole module stays
well under two minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from conftest import make_fake_dataset
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import kgvsf_explore as kx
from kgvsf_explore import schema
from kgvsf_explore.cli import main
from kgvsf_explore.cube.validate import driver_gaps, validate_dataset
from kgvsf_explore.errors import KGVSFError
from kgvsf_explore.scenario import Scenario


def fuzz(n: int) -> settings:
    """Settings of every fuzz test: ``n`` derandomized examples, no example database."""
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------ scenario JSON

_VARS = st.sampled_from([*schema.DRIVERS, "TMAX", "", "soil_moisture", "x" * 300])
_OPS = st.sampled_from(["offset", "scale", "set", "from_year", "replace", "OFFSET", "", "rm"])
_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(-10**12, 10**12), st.sampled_from([0, 1, -1, 3.0, 1e308]))
_DATES = st.one_of(st.sampled_from(["2021-03-01", "2021-04-15", "2021-06-28", "2021-12-31",
                                    "1000-01-01", "9999-12-31", "2021-02-30", "2021-13-01",
                                    "yesterday", "", None]),
                   st.dates().map(str))
_REGIONS = st.one_of(st.none(), st.lists(_NUMBERS, min_size=0, max_size=5),
                     st.sampled_from(["POLYGON ((440000 4649800, 440100 4649800, 440100 "
                                      "4650000, 440000 4649800))", "POLYGON ((", [440000,
                                      4649800, 440100, 4650000]]))
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), _NUMBERS.filter(
        lambda v: not (isinstance(v, float) and not math.isfinite(v))), st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20)


@st.composite
def _change(draw) -> dict:
    change = {"op": draw(_OPS), "variable": draw(_VARS)}
    keys = draw(st.sets(st.sampled_from(["value", "start", "end", "region", "region_crs", "year",
                                         "days", "values", "junk"])))
    for key in keys:
        change[key] = draw({
            "value": _NUMBERS, "start": _DATES, "end": _DATES, "region": _REGIONS,
            "region_crs": st.sampled_from(["EPSG:32615", "EPSG:4326", "no such crs", 3]),
            "year": st.one_of(st.integers(-5, 3000), st.just("2021")),
            "days": st.lists(_DATES, max_size=4), "values": st.lists(_NUMBERS, max_size=4),
            "junk": _JSON}[key])
    return change


@st.composite
def _plausible_change(draw) -> dict:
    """A change that mostly makes sense, so that many scenarios get to be applied."""
    change = {"op": draw(st.sampled_from(["offset", "scale", "set"])),
              "variable": draw(st.sampled_from(["prcp", "tmax", "tmin", "srad", "vp", "swe"]))}
    change["value"] = draw(st.floats(-5, 5) if change["op"] == "offset" else st.floats(0, 3))
    if draw(st.booleans()):
        change["start"] = draw(st.sampled_from(["2021-03-01", "2021-04-10", "2021-05-20"]))
    if draw(st.booleans()):
        change["end"] = draw(st.sampled_from(["2021-05-30", "2021-06-28", "2022-01-01"]))
    if draw(st.booleans()):
        change["region"] = draw(st.sampled_from([[440000, 4649800, 440100, 4650000],
                                                 [0, 0, 1, 1]]))
    return change


_SCENARIO = st.one_of(
    st.fixed_dictionaries({"kgvsf_scenario_version": st.just(1),
                           "changes": st.lists(_plausible_change(), max_size=40)},
                          optional={"name": st.text(max_size=30)}),
    st.fixed_dictionaries(
        {"kgvsf_scenario_version": st.sampled_from([1, 2, 3, 0, "1", None, True])},
        optional={"name": st.one_of(st.text(max_size=30), st.integers()),
                  "changes": st.one_of(st.lists(_change(), max_size=5), _JSON)}),
    _JSON)


@pytest.fixture(scope="module")
def drivers():
    ds = make_fake_dataset(n_days=120)
    return ds[list(schema.DRIVERS)]


def _clear_or_fine(call) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except KGVSFError:
        return None


@fuzz(150)
@given(data=_SCENARIO)
def test_scenario_json_gives_a_scenario_or_a_clear_error(data, drivers, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("s") / "scenario.json"
    text = json.dumps(data, allow_nan=True)
    path.write_text(text)
    before = drivers.copy(deep=True)
    scenario = _clear_or_fine(lambda: Scenario.from_json(path))
    event("parsed" if scenario is not None else "refused")
    if scenario is not None:
        assert isinstance(scenario, Scenario)
        assert Scenario.from_json(scenario.to_json()) == scenario  # round trip
        result = _clear_or_fine(lambda: scenario.apply(drivers))
        event("applied" if result is not None else "not applicable")
        if result is not None:
            assert set(result.data_vars) == set(drivers.data_vars)
    assert path.read_text() == text  # the input file is never touched
    assert drivers.identical(before)  # nor the input data


@fuzz(60)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1")), st.sampled_from(["[" * 5000, "{" * 5000, '{"a":' * 3000])))
def test_any_text_as_a_scenario_file(text, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("t") / "scenario.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    raw = path.read_bytes()
    _clear_or_fine(lambda: Scenario.from_json(path))
    assert path.read_bytes() == raw


# ---------------------------------------------------------------------------- CLI arguments

CUBE = kx.sample_path()
BBOX = "446005,4649600,446300,4650000"


def _fingerprint(folder: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


_VALUES = {
    "--start": st.one_of(st.sampled_from(["2022-07-01", "2022-07-01T12:00+05:00", "2019-01-01",
                                          "2030-01-01", "1000-01-01", "2022-02-30", "", "now",
                                          "-1", "2022-07-01T25:00"]), st.text(max_size=12)),
    "--horizons": st.one_of(st.sampled_from(["5", "5,15", "5,5", "0", "61", "2.5", "abc", "",
                                             ",", "-3", "1," * 40, "99999999"]),
                            st.text(max_size=10)),
    "--bbox": st.one_of(st.sampled_from([BBOX, "-93.6,41.2,-93.5,41.3", "1,2,3", "nan,1,2,3",
                                         "3,2,1,4", "inf,0,1,1", "446000,4649000,446001,4649001",
                                         ""]), st.text(max_size=20)),
    "--chunks": st.one_of(st.sampled_from(["auto", "16", "0", "-5", "abc", "1e3"]),
                          st.text(max_size=6)),
    "--out": st.sampled_from(["f.zarr", "existing", "file.txt", ".", "..", "sub/deep/f.zarr",
                              str(CUBE), ""]),
}


@st.composite
def _plausible_argv(draw) -> list[str]:
    """A run that mostly succeeds, so that forecasts are computed and written too."""
    return ["forecast", "--cube", str(CUBE), "--quiet", "--bbox", BBOX, "--out",
            draw(st.sampled_from(["f.zarr", "f.zarr", "existing"])), "--start",
            draw(st.sampled_from(["2022-07-01", "2022-07-01T12:00+05:00", "2022-12-01"])),
            "--horizons", draw(st.sampled_from(["5", "3,30", "1"]))]


@st.composite
def _hostile_argv(draw) -> list[str]:
    argv = ["forecast", "--cube", str(CUBE), "--quiet", "--start",
            draw(_VALUES["--start"]), "--out", draw(_VALUES["--out"])]
    for option in draw(st.sets(st.sampled_from(["--horizons", "--bbox", "--chunks"]))):
        argv += [option, draw(_VALUES[option])]
    if "--bbox" not in argv and draw(st.booleans()):
        argv += ["--bbox", BBOX]  # keep most successful runs small
    if draw(st.booleans()):
        argv.append("--overwrite")
    return argv


@fuzz(30)
@given(argv=st.one_of(_plausible_argv(), _hostile_argv()))
def test_forecast_arguments_give_a_result_or_a_clear_error(argv, tmp_path_factory,
                                                           monkeypatch) -> None:
    work = tmp_path_factory.mktemp("cli")
    (work / "existing").mkdir()
    (work / "existing" / "notes.txt").write_text("mine")
    (work / "file.txt").write_text("mine too")
    monkeypatch.chdir(work)
    inputs = _fingerprint(CUBE)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: a usage error naming the option
        code = exc.code
        assert code == 2, argv
    assert code in (0, 1, 2), argv
    event(f"exit status {code}")
    assert _fingerprint(CUBE) == inputs  # the cube is never written
    assert (work / "file.txt").read_text() == "mine too"
    if "--overwrite" not in argv:
        assert (work / "existing" / "notes.txt").read_text() == "mine"


@fuzz(40)
@given(argv=st.lists(st.one_of(
    st.sampled_from(["info", "whatif", "serve", "demo", "--cube", "--scenario", "--start",
                     "--port", "-1", "99999", "--check", "--bbox", "-93.6,1,2,3", "--end",
                     "nowhere", "2022-07-01", "--seeds", "a,b", "evaluate-weights"]),
    st.text(max_size=8)), min_size=1, max_size=6))
def test_any_argument_list_is_parsed_or_refused_with_usage(argv, monkeypatch, capsys) -> None:
    """Parsing alone (commands that would start work are replaced by a no-op)."""
    from kgvsf_explore import cli

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(func=lambda args: 0)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code in (0, 2), argv


# --------------------------------------------------------------------------- cube validation

_TARGETS = st.sampled_from(["B04", "B08_true", "tmax", "tmin", "prcp", "srad", "vp", "dayl",
                            "swe", "soil_moisture", "cloud_mask", "crop_type"])
_EDITS = st.sampled_from(["fill", "scale", "drop", "units", "int", "nan_day", "reverse_time",
                          "empty_time", "empty_day", "dup_time", "drop_crs", "transpose"])


@fuzz(80)
@given(edits=st.lists(st.tuples(_EDITS, _TARGETS, _NUMBERS.filter(
    lambda v: not isinstance(v, int) or abs(v) < 1e15)), min_size=1, max_size=3))
def test_cube_validation_gives_a_clear_error_or_passes(edits) -> None:
    ds = make_fake_dataset(ny=8, nx=10, n_days=40)
    for edit, name, value in edits:
        if name not in ds.variables and edit not in ("reverse_time", "empty_time", "empty_day",
                                                     "dup_time", "drop_crs"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if edit == "fill":
                ds[name] = ds[name].astype("float64") * 0 + float(value)
            elif edit == "scale":
                ds[name] = ds[name].astype("float64") * float(value)
            elif edit == "drop":
                ds = ds.drop_vars(name)
            elif edit == "units":
                ds[name].attrs["units"] = str(value)
            elif edit == "int":
                ds[name] = ds[name].fillna(0).astype("int32")
            elif edit == "nan_day" and "day" in ds[name].dims:
                ds[name] = ds[name].where(ds.day != ds.day[int(abs(value) % 40)], value)
            elif edit == "reverse_time":
                ds = ds.isel(time=slice(None, None, -1))
            elif edit == "empty_time":
                ds = ds.isel(time=slice(0, 0))
            elif edit == "empty_day":
                ds = ds.isel(day=slice(0, 0))
            elif edit == "dup_time":
                ds = ds.isel(time=[0, 0, *range(1, ds.sizes["time"])])
            elif edit == "drop_crs" and schema.GRID_MAPPING in ds:
                ds = ds.drop_vars(schema.GRID_MAPPING)
            elif edit == "transpose" and ds[name].ndim > 1:
                ds[name] = ds[name].transpose(*reversed(ds[name].dims))
    before = ds.copy(deep=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate_dataset(ds)
            gaps = driver_gaps(ds)
        assert all(isinstance(g, str) for g in gaps)
        event("valid")
    except KGVSFError as err:
        assert str(err)
        event("refused")
    assert ds.identical(before)  # validation never changes the data
