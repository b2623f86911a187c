"""Evaluate trained weights on unseen worlds and write their model card."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..cube.cube import Cube
from ..weights import default_weights, load_model
from ..world import make_world
from .skill import forecast_skill
from .whatif import scenario_response

#: Months of the growing-season table (targets from April to October: no snow).
GROWING_SEASON = tuple(range(4, 11))


def _skill(model, seeds: Sequence[int], size: str, n_cases: int,
           months: Sequence[int] | None = None) -> pd.DataFrame:
    tables = []
    for seed in seeds:
        cube = Cube(make_world(seed=seed, size=size)[0]).load()
        tables.append(forecast_skill(model, cube, n_cases=n_cases, seed=1000 + seed,
                                     months=months, progress=False))
    df = pd.concat(tables)
    agg = df.groupby(level=0, sort=False).agg(
        {c: "sum" if c == "cases" else "mean" for c in df.columns if not c.startswith("skill")})
    name = model.objective
    agg["skill_vs_persistence"] = 1 - agg[name] / agg["persistence"]
    agg["skill_vs_climatology"] = 1 - agg[name] / agg["climatology"]
    return agg


def _fmt(df: pd.DataFrame) -> str:
    return df.to_markdown(floatfmt=".4f") if _has_tabulate() else f"```\n{df.to_string()}\n```"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate_weights(
    weights: str | os.PathLike | None = None,
    *,
    compare: str | os.PathLike | None = None,
    seeds: Sequence[int] = (7,),
    size: str = "small",
    n_cases: int = 160,
    card: str | os.PathLike | None = None,
) -> dict:
    """Print (and optionally write as a model card) the skill and what-if response of weights.

    Parameters
    ----------
    weights
        Checkpoint folder (default: the shipped weights).
    compare
        A second checkpoint (e.g. the SM-VSF baseline) evaluated on the same cases.
    seeds
        Seeds of sample worlds never used in training.
    card
        Markdown file to write.
    """
    folder = Path(weights) if weights else default_weights()
    model, sha = load_model(folder)
    def show(title: str, df: pd.DataFrame) -> None:
        print(f"\n{title}")
        print(df.to_string(float_format=lambda v: f"{v:.4f}"))

    skill = _skill(model, seeds, size, n_cases)
    season = _skill(model, seeds, size, n_cases, GROWING_SEASON)
    show(f"forecast MSE on unseen worlds {list(seeds)} ({size}), weights {folder}:", skill)
    show("growing season only (targets April-October):", season)
    other = other_season = None
    if compare:
        cmp_model, _ = load_model(compare)
        other = _skill(cmp_model, seeds, size, n_cases)
        other_season = _skill(cmp_model, seeds, size, n_cases, GROWING_SEASON)
        show(f"the same cases with {compare} ({cmp_model.objective}):", other)
        show("growing season only:", other_season)
    responses = [scenario_response(model, seed, size=size) for seed in seeds]
    print("\ndrought check (forecast vs simulator NDVI change, rain-fed crops):")
    resp = pd.DataFrame(responses).set_index("seed")
    print(resp.to_string(float_format=lambda v: f"{v:.3f}"))
    if compare:
        cmp_resp = pd.DataFrame([scenario_response(cmp_model, s, size=size) for s in seeds])
        print(f"\nsame check with {cmp_model.objective}:")
        print(cmp_resp.set_index("seed").to_string(float_format=lambda v: f"{v:.3f}"))
    result = {"skill": skill, "season": season, "compare": other,
              "compare_season": other_season, "response": resp, "sha256": sha}
    if card:
        _write_card(Path(card), folder, model, result, seeds, size, n_cases, compare)
        print(f"\nwrote {card}")
    return result


def _write_card(path: Path, folder: Path, model, result, seeds, size, n_cases, compare) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    trained = folder / "training_data.json"
    data = json.loads(trained.read_text()) if trained.is_file() else {}
    hist = folder / "history.csv"
    history = pd.read_csv(hist) if hist.is_file() else None
    lines = [
        f"# Model card: KG-VSF `{folder.name}`",
        "",
        f"- objective: `{model.objective}`; weights sha256 `{result['sha256']}`",
        f"- parameters: {sum(p.numel() for p in model.parameters()):,}",
        f"- trained on: {data.get('description', 'see config.json')}",
        "- regenerate: `bash scripts/train_weights.sh` (pretrains, evaluates, writes this card)",
        "",
        "## Training",
        "",
        "```json",
        json.dumps(cfg, indent=2),
        "```",
        "",
    ]
    if history is not None and len(history):
        last = history.dropna(subset=["val_loss"]).tail(3)
        lines += ["Last validation points (held-out year of the training worlds):", "",
                  _fmt(last.set_index("step")), ""]
    lines += [
        f"## Forecast error on unseen worlds (seeds {list(seeds)}, size {size}, "
        f"{n_cases} random tile/date/horizon cases each)",
        "",
        "Mean squared reflectance error over all bands against the simulator's cloud-free truth; "
        "persistence = last valid observation, climatology = same pixels, other years, +-10 days.",
        "",
        _fmt(result["skill"]),
        "",
        "Winter snow (which the weather drivers announce through `swe` and temperature) "
        "dominates these errors, so the same evaluation restricted to the growing season "
        "(targets from April to October):",
        "",
        _fmt(result["season"]),
        "",
    ]
    if result["compare"] is not None:
        lines += [f"The same cases with the `{Path(compare).name}` baseline "
                  "(forecasting without weather, same data, same step budget) show what the "
                  "weather adds:", "", _fmt(result["compare"]), "", "Growing season only:", "",
                  _fmt(result["compare_season"]), ""]
    lines += [
        "## Drought check",
        "",
        "No rain and +3 degC over (t, t+k] from 1 July of the last year; forecast NDVI change "
        "against the simulator's true change on rain-fed crop pixels (corn, soybean, grassland).",
        "",
        _fmt(result["response"]),
        "",
        "## Limits",
        "",
        "- Trained on simulated sample worlds only (central-Iowa-like climate, five land covers, "
        "Sentinel-2-like bands, 10 m). Real imagery needs adaptation (`kgvsf finetune`, later).",
        "- Forecasts up to 60 days; drivers for the horizon must be given (observed weather or a "
        "scenario); the weather enters as tile means (32 x 32 px), not per pixel.",
        "- Small network (CPU-trainable); see the evaluation table issue for downstream tasks.",
        "",
    ]
    path.write_text("\n".join(lines))
