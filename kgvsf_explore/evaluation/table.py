"""The evaluation table from finished cells: Markdown, CSV and a plot.

``results.csv`` is long: one row per (task, metric, protocol, budget, encoder) with the mean,
the standard deviation over seeds and the number of seeds. ``results.md`` shows the metrics
per encoder for each protocol and budget, and the claim check: KG-VSF against SM-MR, MM-MR and
next-token on soil moisture forecasting, future image forecasting and the counterfactual check,
where a win counts only if the gap exceeds the sum of both seed spreads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["CLAIM", "aggregate", "claim_check", "markdown", "plot", "write_table"]

#: Columns of a cell that are not metrics.
_NOT_METRICS = {"encoder", "pretrain_seed", "task", "protocol", "budget", "seed", "seconds",
                "labelled_pixels", "confusion", "scenarios"}

#: (task, protocol or None for the main protocol, metric, direction) of the claim; the
#: direction is True (higher is better), False (lower is better) or "one" (closer to 1 is
#: better: the sharpness ratio, below 1 blurred, above 1 noisier than the truth).
CLAIM: tuple[tuple[str, str | None, str, bool | str], ...] = (
    ("sm_forecast", None, "r2", True),
    ("sm_forecast", None, "rmse", False),
    ("sm_forecast_from_state", None, "r2", True),
    ("sm_forecast_from_state", None, "skill", True),
    ("future_image", None, "mse", False),
    ("future_image", None, "sharpness", "one"),
    ("future_image", "native", "mse", False),
    ("counterfactual", "head", "correlation", True),
    ("counterfactual", "head", "same_sign", True),
    ("counterfactual", "head", "rmse", False),
    ("counterfactual", "native", "correlation", True),
    ("counterfactual", "native", "same_sign", True),
    ("counterfactual", "native", "rmse", False),
)
#: The baselines KG-VSF must beat.
RIVALS = ("sm-mr", "mm-mr", "next-token")

#: Order of the metrics in the tables.
_ORDER = ("macro_f1", "r2", "skill", "rmse", "mse", "sharpness", "correlation", "same_sign")


def aggregate(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean, spread (std over seeds, ddof 1; 0 for one seed) and count per metric (a cell
    written twice counts once: the last line wins)."""
    from .runner import cell_key

    rows = list({cell_key(r): r for r in rows}.values())
    long = []
    for r in rows:
        for k, v in r.items():
            if k in _NOT_METRICS or not isinstance(v, (int, float)):
                continue
            long.append({"task": r["task"], "metric": k, "protocol": r["protocol"],
                         "budget": float(r["budget"]), "encoder": r["encoder"],
                         "seed": r["seed"], "value": float(v)})
    if not long:
        return pd.DataFrame(columns=["task", "metric", "protocol", "budget", "encoder", "mean",
                                     "std", "n"])
    df = pd.DataFrame(long)
    g = df.groupby(["task", "metric", "protocol", "budget", "encoder"], sort=False)["value"]
    out = g.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
    out["std"] = out["std"].fillna(0.0)
    return out


def _fmt(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    digits = 4 if abs(mean) < 0.1 else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _metric_rank(metric: str) -> tuple[int, str]:
    base = metric.split("_h")[0]
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), metric)


def _grid(agg: pd.DataFrame, protocol: str, budget: float, encoders: list[str],
          primary_only: bool, tasks: list[str]) -> str:
    from ..tasks import TASKS

    sub = agg[(agg.protocol == protocol) & (agg.budget == budget)]
    if sub.empty:
        return ""
    lines = ["| task | metric | " + " | ".join(encoders) + " |",
             "|---|---|" + "---|" * len(encoders)]
    for task in tasks:
        t = sub[sub.task == task]
        metrics = sorted(t.metric.unique(), key=_metric_rank)
        if primary_only and task in TASKS:
            metrics = [TASKS[task].primary[0]]
        for m in metrics:
            cells = []
            for e in encoders:
                row = t[(t.metric == m) & (t.encoder == e)]
                cells.append(_fmt(row["mean"].iloc[0], row["std"].iloc[0]) if len(row) else "")
            lines.append(f"| {task} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claim_check(agg: pd.DataFrame, protocol: str = "frozen", budget: float = 1.0
                ) -> pd.DataFrame:
    """KG-VSF against each rival on the claim's metrics: gap, spreads and verdict.

    ``verdict`` is ``win`` when KG-VSF is better by more than the sum of both seed spreads,
    ``loss`` when it is worse by more than that, else ``tie``.
    """
    rows = []
    for task, proto, metric, higher in CLAIM:
        p = proto or protocol
        b = 1.0 if proto else budget
        sub = agg[(agg.task == task) & (agg.metric == metric) & (agg.protocol == p)
                  & (agg.budget == b)].set_index("encoder")
        if "kgvsf" not in sub.index:
            continue
        k = sub.loc["kgvsf"]
        for rival in RIVALS:
            if rival not in sub.index:
                continue
            r = sub.loc[rival]
            if higher == "one":
                gap = abs(math.log(r["mean"])) - abs(math.log(k["mean"]))
                spread = k["std"] / k["mean"] + r["std"] / r["mean"]
            else:
                gap = (k["mean"] - r["mean"]) * (1 if higher else -1)
                spread = k["std"] + r["std"]
            verdict = "win" if gap > spread else ("loss" if -gap > spread else "tie")
            rows.append({"task": task, "protocol": p, "metric": metric, "rival": rival,
                         "kgvsf": k["mean"], "rival_mean": r["mean"], "better_by": gap,
                         "spread": spread, "verdict": verdict})
    return pd.DataFrame(rows)


def markdown(agg: pd.DataFrame, cfg: Any, command: str, seconds: float | None = None,
             pretrain_seeds: list[int] | None = None) -> str:
    """The Markdown report of an aggregated table (``pretrain_seeds``: those of its cells)."""
    from .pretrained import ENCODERS

    encoders = [e for e in ENCODERS if e in set(agg.encoder)]
    encoders += sorted(e for e in set(agg.encoder) if str(e).startswith("peer:"))
    tasks = [t for t in (*cfg.tasks, "counterfactual") if t in set(agg.task)]
    seeds = ",".join(str(s) for s in cfg.seeds)
    head = [
        f"# Evaluation table (preset `{cfg.preset}`)",
        "",
        f"Made by `{command}`"
        + (f" (its last invocation took {seconds / 60:.0f} min; a resumed run counts only "
           "what it computed itself)" if seconds else "") + ".",
        f"Evaluation world: {cfg.cube or f'sample world seed {cfg.seed}'}; finetuning seeds "
        f"{seeds}; every cell is mean ± standard deviation over those seeds. Protocol and "
        "split: see `docs/evaluation.md`.",
        "",
    ]
    if pretrain_seeds and len(pretrain_seeds) > 1:
        ps = ",".join(str(s) for s in pretrain_seeds)
        head[-1:-1] = [
            f"Pretraining seeds {ps}: the frozen protocol at 100 % of the labels, the native "
            "forecasts and the counterfactual check pool every pretraining run with every "
            f"finetuning seed (spreads over pretraining and finetuning); the other cells come "
            f"from pretraining seed {getattr(cfg, 'pretrain_seed', pretrain_seeds[0])}. `n` in "
            "`results.csv` counts the runs pooled in a cell.",
        ]
    parts = list(head)
    cc = claim_check(agg)
    if not cc.empty:
        parts += ["## The claim: KG-VSF vs SM-MR, MM-MR, next-token (frozen, 100 % labels)", "",
                  "A win needs a gap larger than the sum of both spreads (standard deviations "
                  "over the runs pooled in each cell).", "",
                  "| task | metric | rival | KG-VSF | rival | KG-VSF better by | spread | "
                  "verdict |", "|---|---|---|---|---|---|---|---|"]
        for _, r in cc.iterrows():
            parts.append(f"| {r.task} ({r.protocol}) | {r.metric} | {r.rival} | "
                         f"{r.kgvsf:.4f} | {r.rival_mean:.4f} | {r.better_by:+.4f} | "
                         f"{r.spread:.4f} | {r.verdict} |")
        parts.append("")
    main_budget = 1.0
    for protocol in ("frozen", "finetune"):
        for budget in sorted(agg.budget.unique(), reverse=True):
            full = protocol == "frozen" and budget == main_budget
            grid = _grid(agg, protocol, budget, encoders, not full,
                         [t for t in tasks if t != "counterfactual"])
            if grid:
                parts += [f"## {protocol}, {budget:.0%} of the labels"
                          + ("" if full else " (primary metrics)"), "", grid, ""]
    grid = _grid(agg, "native", 1.0, encoders, False, ["future_image"])
    if grid:
        parts += ["## Future image forecasting by the pretrained forecaster itself (native)",
                  "", grid, ""]
    for proto in ("head", "native"):
        grid = _grid(agg, proto, 1.0, encoders, False, ["counterfactual"])
        if grid:
            parts += [f"## Counterfactual check ({proto} forecasts)", "", grid, ""]
    return "\n".join(parts)


def plot(agg: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Primary metric of each task against the label budget, one line per encoder (frozen
    and finetune), with seed spreads as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..tasks import TASKS
    from .pretrained import ENCODERS

    tasks = [t for t in TASKS if t in set(agg.task)]
    protocols = [p for p in ("frozen", "finetune") if p in set(agg.protocol)]
    fig, axes = plt.subplots(len(protocols), max(1, len(tasks)),
                             figsize=(3.2 * max(1, len(tasks)), 2.8 * len(protocols)),
                             squeeze=False)
    for i, proto in enumerate(protocols):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            metric, higher = TASKS[task].primary
            sub = agg[(agg.task == task) & (agg.metric == metric) & (agg.protocol == proto)]
            for enc, g in sub.groupby("encoder", sort=False):
                g = g.sort_values("budget")
                ax.errorbar(g.budget, g["mean"], yerr=g["std"], marker="o", ms=3,
                            lw=2.2 if enc == "kgvsf" else 1.0, label=enc, capsize=2,
                            color=f"C{ENCODERS.index(enc)}" if enc in ENCODERS else None)
            ax.set_xscale("log")
            ax.set_title(f"{task} ({proto})", fontsize=9)
            ax.set_xlabel("label budget", fontsize=8)
            ax.set_ylabel(metric + (" ↑" if higher else " ↓"), fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = [], []
    for ax in axes.ravel():  # every encoder once, even if the first panel lacks one
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_table(rows: list[dict[str, Any]], out: str | os.PathLike[str], cfg: Any,
                command: str | None = None, with_plot: bool = True) -> dict[str, Path]:
    """Write ``results.csv``, ``results.md``, ``claim.csv`` and (``with_plot``) ``results.png``
    to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(rows)
    command = command or cfg.extra.get("command") or f"kgvsf evaluate --preset {cfg.preset}"
    seconds = cfg.extra.get("seconds")
    paths = {"csv": out / "results.csv", "md": out / "results.md", "png": out / "results.png",
             "claim": out / "claim.csv"}
    agg.to_csv(paths["csv"], index=False, float_format="%.6g")
    claim_check(agg).to_csv(paths["claim"], index=False, float_format="%.6g")
    pseeds = sorted({int(r.get("pretrain_seed", 0)) for r in rows})
    paths["md"].write_text(markdown(agg, cfg, command, seconds, pseeds) + "\n")
    if with_plot and not agg.empty:
        plot(agg, paths["png"])
    return paths
