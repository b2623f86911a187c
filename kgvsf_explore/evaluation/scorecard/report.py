"""A scorecard on disk: ``results.json``, ``meta.json``, ``report.md`` and a figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..._atomic import atomic_write
from .rows import BINS

__all__ = ["markdown", "write_outputs", "plot_by_horizon"]

_BIN_ORDER = [f"{a}-{b}" for a, b in BINS] + ["all"]


def _fmt(df: pd.DataFrame, digits: int = 4, index: bool = True) -> str:
    if df.empty:
        return "(no rows)"
    return df.to_markdown(floatfmt=f".{digits}f", index=index)


def _shown(path: str) -> str:
    """``path`` relative to the working folder when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _pivot(df: pd.DataFrame, task: str, metric: str, order: list[str] | None = None
           ) -> pd.DataFrame:
    sel = df[(df["task"] == task) & (df["metric"] == metric)]
    if sel.empty:
        return pd.DataFrame()
    table = sel.pivot_table(index="bin", columns="method", values="value", aggfunc="first",
                            sort=False)
    counts = sel.groupby("bin", sort=False)[["n_cases", "n_dates"]].max()
    table = table.join(counts.rename(columns={"n_cases": "cases", "n_dates": "dates"})
                       .astype(int).astype(str))
    if order:
        table = table.reindex([b for b in order if b in table.index])
    return table


def markdown(card) -> str:
    """The report as Markdown."""
    df = card.to_frame()
    meta = card.meta
    name = meta.get("objective", "model")
    out = [f"# Scorecard: `{Path(meta.get('weights', '?')).name}` ({name}) beside its peers",
           "",
           f"- weights: `{_shown(meta.get('weights', '?'))}` "
           f"(sha256 `{meta.get('weights_sha256', '')[:16]}...`)",
           f"- cube: {meta.get('cube')}; test period {' to '.join(meta.get('test_period', []))}",
           f"- trees trained on: {meta.get('trees_trained_on', 'not used')} "
           f"({meta.get('trees_rows', 0)} rows)",
           *([f"- forecast intervals calibrated on: {meta['intervals'].get('cube')} "
              f"({meta['intervals'].get('n_cases')} cases)"] if meta.get("intervals") else []),
           f"- run time: {meta.get('seconds', '?')} s",
           ""]
    for task, why in card.skipped.items():
        out.append(f"- **{task} skipped**: {why}")
    if card.skipped:
        out.append("")
    if (df.get("task") == "forecast").any():
        out += ["## Forecast", "",
                "Every method forecasts the same tiles at the same `t + k`; each case is scored "
                "on the pixels where the truth is known and every method has a value. "
                "`cases`: forecast tiles in the bin; `dates`: distinct target dates.", ""]
        for metric, title in (
                ("ndvi_mae_mean_growing_season", "NDVI MAE, mean over cases, growing season "
                                                 "(targets April-October)"),
                ("ndvi_mae_median_growing_season", "NDVI MAE, median over cases, growing season"),
                ("refl_mse_mean_growing_season", "Reflectance MSE, mean, growing season"),
                ("refl_mse_median_growing_season", "Reflectance MSE, median, growing season"),
                ("ndvi_mae_mean_all_year", "NDVI MAE, mean, all year"),
                ("refl_mse_mean_all_year", "Reflectance MSE, mean, all year"),
                (f"beats_{name}_share_growing_season",
                 f"Share of cases where the peer's NDVI MAE is below {name}'s, growing season"),
                ("coverage80_ndvi_growing_season", "80 % interval coverage, NDVI, growing "
                                                   "season (target 0.80)"),
                ("coverage80_reflectance_growing_season", "80 % interval coverage, "
                                                          "reflectance, growing season"),
                ("coverage80_ndvi_all_year", "80 % interval coverage, NDVI, all year"),
                ("coverage80_reflectance_all_year", "80 % interval coverage, reflectance, "
                                                    "all year"),
                ("width80_ndvi_growing_season", "80 % interval width, NDVI, growing season")):
            table = _pivot(df, "forecast", metric, _BIN_ORDER)
            if not table.empty:
                out += [f"### {title}", "", _fmt(table, 5 if "mse" in metric else 3), ""]
    if (df.get("task") == "gapfill").any():
        out += ["## Gap filling", "",
                "Held-out image dates of the test period, hidden together; the weights "
                "forecast each from the images before it and the weather (forward-only); "
                "their fill head (`<objective>-fill`, fitted on the cube with those dates "
                "hidden) and linear interpolation use both sides. `cases`: scored pixels over "
                "all dates.", ""]
        sel = df[(df["task"] == "gapfill") & (df["bin"] == "all")]
        table = sel.pivot_table(index="method", columns="metric", values="value",
                                aggfunc="first", sort=False)
        out += [_fmt(table, 5), "",
                f"{int(sel['n_dates'].max())} held-out dates, {int(sel['n_cases'].max())} "
                "scored pixels.", ""]
    for task in ("crop_type", "soil_moisture"):
        sel = df[df["task"] == task]
        if sel.empty:
            continue
        table = sel.pivot_table(index="metric", columns="method", values="value",
                                aggfunc="first", sort=False)
        out += [f"## {task.replace('_', ' ').capitalize()}", "",
                "The weights: frozen per-pixel embeddings and a head fitted on group-A fields "
                "of the earlier years (mean over finetuning seeds); the forest: the same labels. "
                f"Scored on the same {int(sel['n_cases'].max())} test pixels "
                f"({int(sel['n_dates'].max())} dates).", "", _fmt(table, 3), ""]
    sel = df[(df.get("task") == "whatif")] if "task" in df else pd.DataFrame()
    if not sel.empty:
        core = sel[sel["metric"].isin(["same_sign", "pearson_r", "rmse"])]
        table = core.pivot_table(index=["bin", "metric"], columns="method", values="value",
                                 aggfunc="first", sort=False).reset_index().rename(
            columns={"bin": "scenario"})
        out += ["## What-if", "",
                "NDVI change (scenario minus observed weather) against the simulator's true "
                "change on every pixel; same sign counted where the true change exceeds 0.02; "
                "`no_change` is what persistence and climatology answer.", "",
                _fmt(table, 3, index=False), ""]
        per = card.extra.get("whatif_per_crop")
        if per is not None and len(per):
            out += ["Mean NDVI change per crop type (`k`: days from `t` to the scored image):",
                    "", _fmt(per, 3, index=False), ""]
        irr = sel[sel["metric"] == "irrigated_ratio"]
        if not irr.empty:
            table = irr.pivot_table(index="bin", columns="method", values="value",
                                    aggfunc="first", sort=False).reset_index().rename(
                columns={"bin": "scenario"})
            out += ["Irrigated over rain-fed: mean absolute NDVI change of the irrigated pixels "
                    "over that of the rain-fed pixels of the same crop types, each side the mean "
                    "over those crop types (below 1: irrigated fields change less).", "",
                    _fmt(table, 2, index=False), ""]
    return "\n".join(out)


def plot_by_horizon(card, path: Path) -> Path | None:
    """Error by horizon bin per method (NDVI MAE and reflectance MSE, growing season)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    df = card.to_frame()
    if df.empty or not (df["task"] == "forecast").any():
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, label in ((axes[0], "ndvi_mae_mean_growing_season", "NDVI MAE"),
                              (axes[1], "refl_mse_mean_growing_season", "reflectance MSE")):
        table = _pivot(df, "forecast", metric, _BIN_ORDER[:-1])
        for method in [c for c in table.columns if c not in ("cases", "dates")]:
            ax.plot(range(len(table)), table[method].to_numpy(float), marker="o", label=method)
        ax.set_xticks(range(len(table)), list(table.index))
        ax.set_xlabel("horizon (days)")
        ax.set_ylabel(label)
        ax.set_title(f"{label}, growing season")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.part.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_outputs(card, out: Path) -> None:
    """Write ``results.json`` (a list of rows), ``meta.json``, ``report.md`` and the figure."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps([r.to_dict() for r in card.rows], indent=1))
    meta = {**card.meta, "skipped": card.skipped}
    atomic_write(out / "meta.json", json.dumps(meta, indent=2, default=_json_default))
    atomic_write(out / "report.md", markdown(card))
    plot_by_horizon(card, out / "forecast_by_horizon.png")


def _json_default(v):
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return str(v)
