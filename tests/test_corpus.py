"""make-corpus (manifest, interventions, resume) and the streaming corpus loader of pretrain."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from kgvsf_explore.cli import main
from kgvsf_explore.cube import open_cube
from kgvsf_explore.models import preset
from kgvsf_explore.training.corpus import CorpusData
from kgvsf_explore.world.corpus import KINDS, CorpusError, make_corpus, plan, read_manifest


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny worlds (two climates, two sensors), one weather variant each."""
    out = tmp_path_factory.mktemp("corpus") / "c"
    make_corpus(out, worlds=3, weather_variants=1, seed=4, size="tiny",
                climates=["corn-belt", "great-plains"], sensors=["sentinel2", "landsat"],
                workers=1, progress=False)
    return out


def test_plan_spreads_worlds_over_climates_and_sensors() -> None:
    entries = plan(16, 2, seed=1)
    bases = [e for e in entries if e.variant == 0]
    assert len(entries) == 48 and len(bases) == 16
    assert set(Counter((e.climate, e.sensor) for e in bases).values()) == {2}
    assert len({e.seed for e in bases}) == 16
    assert plan(16, 2, seed=1) == entries  # deterministic
    with pytest.raises(CorpusError, match="unknown climate"):
        plan(2, 1, climates=["tundra"])
    with pytest.raises(CorpusError, match="--worlds"):
        plan(0, 1)


def test_manifest_lists_every_cube_with_its_scenario(corpus: Path) -> None:
    m = read_manifest(corpus)
    cubes = m["cubes"]
    assert len(cubes) == 6
    assert {c["climate"] for c in cubes} == {"corn-belt", "great-plains"}
    assert {c["sensor"] for c in cubes} == {"sentinel2", "landsat"}
    for c in cubes:
        cube = open_cube(corpus / c["path"])
        assert cube.ds.attrs["kgvsf_seed"] == c["seed"]
        if c["variant"] == 0:
            assert c["scenario"] is None
        else:
            assert c["scenario"]["kind"] in KINDS
            assert (corpus / c["scenario"]["file"]).is_file()
        if c["sensor"] == "landsat":
            assert "B05" in cube.missing_bands()
    # a variant is the same world (fields) under other weather
    base = open_cube(corpus / "w0000/base").ds
    var = open_cube(corpus / "w0000/v1").ds
    np.testing.assert_array_equal(base["field_id"].values, var["field_id"].values)
    assert not np.allclose(base["tmax"].values, var["tmax"].values) or not np.allclose(
        base["prcp"].values, var["prcp"].values)


def test_corpus_resumes_and_refuses_other_settings(corpus: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(corpus, copy)
    kept = (copy / "w0000/base/cube.zarr/zarr.json").stat().st_mtime_ns
    shutil.rmtree(copy / "w0001/v1")
    make_corpus(copy, worlds=3, weather_variants=1, seed=4, size="tiny",
                climates=["corn-belt", "great-plains"], sensors=["sentinel2", "landsat"],
                workers=1, progress=False)
    assert (copy / "w0001/v1/cube.zarr").is_dir()
    assert (copy / "w0000/base/cube.zarr/zarr.json").stat().st_mtime_ns == kept
    assert len(read_manifest(copy)["cubes"]) == 6
    with pytest.raises(CorpusError, match="seed"):
        make_corpus(copy, worlds=3, weather_variants=1, seed=5, size="tiny",
                    climates=["corn-belt", "great-plains"], sensors=["sentinel2", "landsat"],
                    workers=1, progress=False)


def test_every_variant_kind_makes_a_valid_scenario() -> None:
    from kgvsf_explore.world.corpus import variant_scenario

    entries = [e for e in plan(5, 1, seed=2) if e.variant > 0]
    kinds = {variant_scenario(e, "tiny", 2, 1)[0] for e in entries}
    assert kinds == set(KINDS)


def test_streaming_loader_is_even_bounded_and_seekable(corpus: Path) -> None:
    p = preset("tiny", seed=3)
    data = CorpusData(corpus, open_cubes=2, batches_per_cube=2)
    split = data.split()
    assert set(split["train_worlds"]).isdisjoint(split["val_worlds"])
    assert split["val_year"] not in split["train_years"]
    stream, val = data.loaders(p.model, p.train)
    assert len(val) == p.train.val_batches
    # strata (climate, sensor, observed/intervention) are drawn evenly
    counts = Counter(data.stratum(stream.entry(g)) for g in range(8 * len(data.strata)))
    assert set(counts.values()) == {8}
    first = [stream.batch(n) for n in range(6)]
    assert stream.opened == 4 and len(stream.slots) <= 2  # 2 slots x 2 batches, then anew
    again = data.loaders(p.model, p.train)[0]
    again.position = 4  # seek, as a resumed run does
    b = next(again)
    for key, value in first[4].items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, b[key], equal_nan=True)


def test_corpus_pairs_a_world_with_its_variants_from_disk(corpus: Path) -> None:
    from dataclasses import replace

    p = preset("tiny", seed=3)
    train = replace(p.train, pair_weight=0.5, batch_size=4)
    data = CorpusData(corpus, open_cubes=2, batches_per_cube=2)
    pairs = data.variants_of()
    assert pairs and all(int(b["world"]) == w and b["variant"] == 0
                         and {int(v["world"]) for v in vs} == {w}
                         for w, (b, vs) in pairs.items())
    stream, _ = data.loaders(p.model, train)
    batches = [stream.batch(n) for n in range(8)]
    # every other batch pairs the same picks of a world and of its variant, read lazily
    assert ["pair_of" in b for b in batches] == [False, True] * 4
    src = next(iter(stream.pair_slots.values()))[1]
    assert src._lazy and not src.first._in_memory
    for b in batches[1::2]:
        n = len(b["k"]) // 2
        assert b["pair_of"].tolist() == [*range(n, 2 * n), *range(n)]
        for key in ("row", "col", "k", "t_index", "image_offsets"):
            assert torch.equal(b[key][:n], b[key][n:]), key
    again = data.loaders(p.model, train)[0]
    again.position = 7  # seekable, pairs included
    b = next(again)
    for key, value in batches[7].items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, b[key], equal_nan=True)
    # without variants, the pair loss is refused with a way out
    plain = corpus.parent / "plain"
    make_corpus(plain, worlds=2, weather_variants=0, seed=4, size="tiny",
                climates=["corn-belt"], sensors=["sentinel2"], workers=1, progress=False)
    with pytest.raises(ValueError, match="--weather-variants"):
        CorpusData(plain).loaders(p.model, train)


def test_corpus_kinds_keep_observed_cubes_and_the_chosen_interventions(
        corpus: Path, tmp_path: Path) -> None:
    every = CorpusData(corpus)
    held = {every.kind(c) for c in every.train} - {"observed"}
    assert len(held) == 2  # two training worlds, one intervention each, of different kinds
    keep = sorted(held)[0]
    some = CorpusData(corpus, kinds=(keep,))
    assert {some.kind(c) for c in some.train} == {"observed", keep}
    assert sum(c["variant"] == 0 for c in some.train) == sum(
        c["variant"] == 0 for c in every.train)  # observed cubes are all kept
    assert some.split()["kinds"] == [keep] and len(some.variants_of()) == 1
    assert some.val == every.val
    with pytest.raises(CorpusError, match="not in .*it holds"):
        CorpusData(corpus, kinds=("heatwave",))
    # the CLI records the choice, and refuses it without a corpus
    out = tmp_path / "w"
    assert main(["pretrain", "--preset", "tiny", "--corpus", str(corpus), "--corpus-kinds",
                 keep, "--steps", "2", "--out", str(out), "--quiet"]) == 0
    data = json.loads((out / "training_data.json").read_text())
    assert data["split"]["kinds"] == [keep] and f"kind(s) {keep} only" in data["description"]
    assert main(["pretrain", "--preset", "tiny", "--worlds", "1", "--corpus-kinds", keep,
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2


def test_cli_pretrain_on_a_corpus_with_pairs(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "w"
    assert main(["pretrain", "--preset", "tiny", "--corpus", str(corpus), "--pair-weight", "1",
                 "--pixel-context", "--steps", "4", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["pair_weight"] == 1.0
    assert "paired-variant weight 1" in json.loads(
        (out / "training_data.json").read_text())["description"]
    assert (out / "model.safetensors").is_file()


def test_cli_make_corpus_and_make_sample_climate(tmp_path: Path) -> None:
    assert main(["make-corpus", "--out", str(tmp_path / "c"), "--worlds", "1", "--size", "tiny",
                 "--climates", "maritime", "--sensors", "landsat", "--workers", "1",
                 "--quiet"]) == 0
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert [c["climate"] for c in m["cubes"]] == ["maritime"]
    assert main(["make-sample", "--seed", "2", "--size", "tiny", "--climate", "mediterranean",
                 "--no-rotation", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    ds = open_cube(tmp_path / "s").ds
    assert ds.attrs["kgvsf_climate"] == "mediterranean" and ds["crop_type"].dims == ("y", "x")
    assert "--no-rotation" in ds.attrs["source"]
    assert main(["pretrain", "--corpus", str(tmp_path / "c"), "--worlds", "3",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 2
