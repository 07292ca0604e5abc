"""Tables and the figure of a fidelity run, from its cell files (``<out>/cells/*.json``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsim_gym.fidelity.metrics import weighted_value_error

__all__ = ["load_cells", "markdown_table", "plot_deployed", "policy_table", "summarize"]

#: (column title, how to read the figure from a cell, format) of the table, in order.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("LL gap (nats/step)", "ll_gap", "{:.3f}"),
    ("click AUC", "sim_auc", "{:.3f}"),
    ("Kendall tau", "kendall_tau", "{:.2f}"),
    ("mean abs. value error", "mean_abs_rel_error", "{:.0%}"),
    ("weighted value error", "weighted_value_error", "{:.0%}"),
    ("CDQN deployed, % of oracle", "cdqn_pct", "{:.1f}"),
    ("PPO deployed, % of oracle", "ppo_pct", "{:.1f}"),
    ("sim-greedy deployed, % of oracle", "greedy_pct", "{:.1f}"),
    ("fit s", "fit_seconds", "{:.0f}"),
    ("CDQN s", "cdqn_seconds", "{:.0f}"),
    ("PPO s", "ppo_seconds", "{:.0f}"),
)


def load_cells(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every cell record under ``folder`` (sorted by file name)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def _figures(cell: Mapping[str, Any]) -> dict[str, float]:
    deployed = cell.get("deployed") or {}
    return {
        "cdqn_pct": deployed.get("cdqn", {}).get("pct_oracle", math.nan),
        "ppo_pct": deployed.get("ppo", {}).get("pct_oracle", math.nan),
        "greedy_pct": deployed.get("sim-greedy", {}).get("pct_oracle", math.nan),
        "cdqn_seconds": cell["seconds"].get("cdqn", math.nan),
        "ppo_seconds": cell["seconds"].get("ppo", math.nan),
        "ll_gap": cell["predictive"]["ll_gap"],
        "sim_auc": cell["predictive"]["sim_auc"],
        "true_auc": cell["predictive"]["true_auc"],
        "kendall_tau": cell["kendall_tau"],
        "mean_abs_rel_error": cell["mean_abs_rel_error"],
        # From the values, not stored in the cell: cells written before this column read the same.
        "weighted_value_error": weighted_value_error(
            [v["sim"] for v in cell["values"].values()], [v["world"] for v in cell["values"].values()]
        ),
        "fit_seconds": cell["seconds"]["fit"],
    }


def summarize(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sd over seeds of every figure, per (world, simulator, sessions)."""
    groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for cell in cells:
        groups.setdefault((cell["world"], cell["simulator"], cell["sessions"]), []).append(cell)
    out = []
    for (world, sim, sessions), members in sorted(groups.items()):
        figs = [_figures(c) for c in members]
        row: dict[str, Any] = {"world": world, "simulator": sim, "sessions": sessions, "seeds": len(members)}
        for key in figs[0]:
            x = np.array([f[key] for f in figs], dtype=float)
            row[key] = float(np.mean(x))
            row[key + "_sd"] = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
        # An MDP world's oracle is exact (the same in every cell); a learned world's is a Monte-Carlo value per cell.
        row["oracle_value"] = float(np.mean([c["oracle_value"] for c in members]))
        row["oracle_exact"] = members[0].get("oracle_exact", True)
        row["oracle_stderr"] = float(np.mean([c.get("oracle_stderr", 0.0) for c in members]))
        row["oracle_policy"] = members[0].get("oracle_policy", "oracle")
        row["logging_value"] = members[0]["logging_value"]
        # Exact (dynamic programming) unless the cell says otherwise: cells before the large world had no such key.
        row["logging_exact"] = members[0].get("logging_exact", True)
        row["logging_stderr"] = members[0].get("logging_stderr", 0.0)
        greedy = [c["values"]["greedy-belief"]["world"] for c in members if "greedy-belief" in c["values"]]
        row["greedy_belief_value"] = float(np.mean(greedy)) if greedy else math.nan
        out.append(row)
    return out


def _mean_sd(row: Mapping[str, Any], key: str, fmt: str) -> str:
    mean, sd = row[key], row[key + "_sd"]
    if math.isnan(mean):
        return "-"
    return fmt.format(mean) if math.isnan(sd) else f"{fmt.format(mean)} ± {fmt.format(sd)}"


def markdown_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """One markdown table per world: simulator x log size, mean ± sd over seeds."""
    lines: list[str] = []
    for world in sorted({r["world"] for r in summary}):
        rows = [r for r in summary if r["world"] == world]
        r0 = rows[0]
        if not r0["oracle_exact"]:
            head = (
                f"best known policy (`{r0['oracle_policy']}`, the 100 % of the % of oracle columns) "
                f"{r0['oracle_value']:.3f} ± {r0['oracle_stderr']:.3f} clicks/session, logging policy "
                f"{r0['logging_value']:.3f} ± {r0['logging_stderr']:.3f} (both Monte Carlo)"
            )
        elif r0["logging_exact"]:
            head = (
                f"oracle {r0['oracle_value']:.3f} clicks/session, logging policy {r0['logging_value']:.3f} (both exact)"
            )
        else:
            head = (
                f"oracle {r0['oracle_value']:.3f} clicks/session (exact), logging policy {r0['logging_value']:.3f} "
                f"± {r0['logging_stderr']:.3f} (Monte Carlo)"
            )
        lines.append(f"World `{world}`: {head}; true model's click AUC {r0['true_auc']:.3f}.")
        lines.append("")
        lines.append("| simulator | sessions | seeds | " + " | ".join(c[0] for c in _COLUMNS) + " |")
        lines.append("|---|---:|---:|" + "---:|" * len(_COLUMNS))
        for r in rows:
            cells = [_mean_sd(r, key, fmt) for _, key, fmt in _COLUMNS]
            lines.append(f"| {r['simulator']} | {r['sessions']:,} | {r['seeds']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def policy_table(cells: Sequence[Mapping[str, Any]]) -> str:
    """Per cell: each panel policy's value in the world and in the simulator (the detail behind Kendall tau)."""
    lines = ["| cell | " + " | ".join(cells[0]["values"]) + " |", "|---|" + "---:|" * len(cells[0]["values"])]
    for c in cells:
        vals = [f"{v['sim']:.2f} / {v['world']:.2f}" for v in c["values"].values()]
        lines.append(f"| {c['simulator']} n={c['sessions']} s={c['seed']} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n\nEach entry: value in the simulator / value in the world (clicks per session).\n"


def plot_deployed(summary: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Deployed % of oracle against log size, one colour per simulator (mean ± sd): CDQN trained in the simulator
    (solid, circles; the ``world`` lines are the learners trained in the world, the upper references), PPO (dash-dot,
    triangles) and the one-step sim-greedy policy (dotted, squares); the logging policy (which reads the hidden state
    in an MDP world) dashed grey, greedy-belief (an MDP world's greedy on the true model from the click history) dotted
    black. Simulators are drawn slightly apart along the log-size axis so that the points of one log size do not hide
    each other. A learned world's 100 % is its best known policy."""
    from recsim_gym.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    sims = sorted({r["simulator"] for r in summary})
    for i, sim in enumerate(sims):
        shift = 1.06 ** (i - (len(sims) - 1) / 2)
        for key, style, marker in (("cdqn_pct", "-", "o"), ("ppo_pct", "-.", "^"), ("greedy_pct", ":", "s")):
            rows = sorted((r for r in summary if r["simulator"] == sim and not math.isnan(r[key])),
                          key=lambda r: r["sessions"])  # fmt: skip
            if not rows:
                continue
            sd = [0.0 if math.isnan(r[key + "_sd"]) else r[key + "_sd"] for r in rows]
            label = f"{sim}: {dict(cdqn_pct='CDQN', ppo_pct='PPO', greedy_pct='sim-greedy')[key]}"
            x, y = [r["sessions"] * shift for r in rows], [r[key] for r in rows]
            ax.errorbar(x, y, yerr=sd, marker=marker, ls=style, color=f"C{i}", label=label, capsize=3, mfc="none")
    r0 = summary[0]
    logging = "logging policy (state)" if r0["oracle_exact"] else "logging policy"
    ax.axhline(100 * r0["logging_value"] / r0["oracle_value"], ls="--", color="gray", label=logging)
    if not math.isnan(r0["greedy_belief_value"]):
        pct = 100 * r0["greedy_belief_value"] / r0["oracle_value"]
        ax.axhline(pct, ls=":", color="black", label="greedy on the true model (history)")
    ax.set_xscale("log")
    sizes = sorted({r["sessions"] for r in summary})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("logged sessions")
    best = "oracle" if r0["oracle_exact"] else f"best known policy ({r0['oracle_policy']})"
    ax.set_ylabel(f"deployed in the world, % of {best}")
    ax.set_title(f"world {r0['world']}")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: 20 entries
    fig.subplots_adjust(left=0.08, right=0.72)
    save_figure(fig, path, dpi=120)
