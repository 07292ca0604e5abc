"""One cell of the fidelity protocol: (world, simulator, log size, seed) -> a JSON-ready dict (``docs/fidelity.md``).

Steps, all seeded from the cell's seed:

1. log ``sessions`` sessions of the world's logging policy;
2. fit the simulator on them (:mod:`recsim_gym.fidelity.fitting`);
3. predictive fidelity: mean log-likelihood per step and click AUC on held-out logs, the simulator fed the logged
   history, next to the true model's own figures (an MDP world's given the logged hidden state); ``ll_gap`` = truth -
   simulator;
4. policy-evaluation fidelity: the panel's values in the world (exact for an MDP's fixed slates, else Monte Carlo) and
   in the simulator (Monte Carlo, the same random numbers), Kendall tau of the two orders and each relative error;
5. policy-optimisation fidelity: CDQN and PPO trained in the simulator (in the world for the ``world`` row, the upper
   references) join the panel, and their world values are reported as % of the oracle's value (exact in an MDP world;
   in a learned world, the best known policy's, by Monte Carlo); so is the one-step ``sim-greedy`` policy (the
   simulator's top items for the history), which needs no training.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recsim_gym.fidelity.fitting import fit_simulator
from recsim_gym.fidelity.gan_world import GANWorld
from recsim_gym.fidelity.metrics import kendall_tau, relative_error
from recsim_gym.fidelity.panel import SimulatorGreedy
from recsim_gym.fidelity.rollouts import policy_value, predictive_fit
from recsim_gym.fidelity.worlds import World, make_world
from recsim_gym.threads import load_average

__all__ = ["HELDOUT_SEED_OFFSET", "cell_name", "run_cell", "world_truth"]

#: Held-out logs of a cell are drawn with ``seed + HELDOUT_SEED_OFFSET`` (never the fitting logs' seed).
HELDOUT_SEED_OFFSET = 10_000
#: Monte-Carlo rollouts of a cell use ``seed + ROLLOUT_SEED_OFFSET``.
ROLLOUT_SEED_OFFSET = 20_000


def cell_name(world: str, simulator: str, sessions: int, seed: int) -> str:
    """File stem of a cell: ``syntheticmdp__gan-pw__n1000__s0``."""
    return f"{world}__{simulator}__n{sessions}__s{seed}"


def world_truth(world: World | GANWorld, panel: list, eval_sessions: int, seed: int) -> dict[str, dict[str, Any]]:
    """The panel's values in the world: exact where the world can say (an MDP's fixed slates, by dynamic
    programming), else Monte Carlo."""
    out = {}
    user = world.user()
    for policy in panel:
        exact = world.exact_value(policy)
        if exact is not None:
            out[policy.name] = {"value": exact, "stderr": 0.0, "exact": True}
        else:
            v = policy_value(user, policy, eval_sessions, seed, world.horizon)
            out[policy.name] = {"value": v.mean, "stderr": v.stderr, "exact": False}
    return out


def run_cell(
    world_name: str,
    simulator: str,
    sessions: int,
    seed: int,
    eval_sessions: int = 2000,
    heldout_sessions: int = 1000,
    budget: float = 1.0,
    logging: str | None = None,
    cdqn_budget: float = 0.1,
    ppo_budget: float = 1.0,
) -> dict[str, Any]:
    """Run one cell (see the module docstring); returns the cell's record.

    ``cdqn_budget``: CDQN's training transitions as a fraction of the yml's 200,000 (0: no CDQN); ``ppo_budget``:
    PPO's as a fraction of its yml's 12,800 (0: no PPO); ``logging``: the world's logging policy (None: its default).
    """
    start = time.perf_counter()
    load_start = load_average()
    world = make_world(world_name, logging)
    k = world.slate_size
    logs = world.logs(sessions, seed)
    heldout = world.logs(heldout_sessions, seed + HELDOUT_SEED_OFFSET)
    panel = world.panel(logs)
    rollout_seed = seed + ROLLOUT_SEED_OFFSET
    truth = world_truth(world, panel, eval_sessions, rollout_seed)

    t_fit = time.perf_counter()
    user, fit_info = fit_simulator(simulator, world, logs, seed, budget)
    fit_seconds = time.perf_counter() - t_fit

    true_fit = world.true_fit(heldout)
    sim_fit = true_fit if simulator == "world" else predictive_fit(user, heldout)

    deployed: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    # Step 5: each learner trained in the simulator (in the world for the world row: the upper reference) joins the
    # panel, so it is valued in both, and its world value is the deployed figure.
    for name, learner_budget in (("cdqn", cdqn_budget), ("ppo", ppo_budget)):
        if learner_budget <= 0:
            continue
        from recsim_gym.fidelity import learners

        train = learners.train_cdqn if name == "cdqn" else learners.train_ppo
        t_learn = time.perf_counter()
        model, learn_info = train(user, world.n_items, k, world.horizon, seed, learner_budget)
        seconds[name] = time.perf_counter() - t_learn
        fit_info.update(learn_info)
        policy = learners.LearnedPolicy(model, world.n_items, name)
        panel.append(policy)
        truth.update(world_truth(world, [policy], eval_sessions, rollout_seed))
    values = {}
    for policy in panel:
        v = policy_value(user, policy, eval_sessions, rollout_seed, world.horizon)
        t = truth[policy.name]
        values[policy.name] = {
            "world": t["value"],
            "world_stderr": t["stderr"],
            "world_exact": t["exact"],
            "sim": v.mean,
            "sim_stderr": v.stderr,
            "rel_error": relative_error(v.mean, t["value"]),
        }
    names = list(values)
    tau = kendall_tau([values[n]["world"] for n in names], [values[n]["sim"] for n in names])
    oracle, oracle_stderr, oracle_exact = world.oracle(eval_sessions, rollout_seed)
    logging_value, logging_stderr, logging_exact = world.logging_value(eval_sessions, rollout_seed)
    for name in seconds:
        t = truth[name]
        deployed[name] = {"value": t["value"], "stderr": t["stderr"], "pct_oracle": 100 * t["value"] / oracle}
    if hasattr(user, "top_items"):
        # The simulator tracks the world's click history and ranks the items; the world answers.
        v = policy_value(world.user(), SimulatorGreedy(user, k), eval_sessions, rollout_seed, world.horizon)
        deployed["sim-greedy"] = {"value": v.mean, "stderr": v.stderr, "pct_oracle": 100 * v.mean / oracle}
    return {
        "world": world_name,
        "simulator": simulator,
        "sessions": sessions,
        "seed": seed,
        "settings": {
            "eval_sessions": eval_sessions,
            "heldout_sessions": heldout_sessions,
            "budget": budget,
            "logging": world.logging,
            "cdqn_budget": cdqn_budget,
            "ppo_budget": ppo_budget,
            "horizon": world.horizon,
        },
        "fit": fit_info,
        "logs": {"steps": int(logs.n_steps), "clicks_per_session": float(logs.clicks.mean())},
        "predictive": {
            "sim_ll": sim_fit.log_likelihood,
            "true_ll": true_fit.log_likelihood,
            "ll_gap": true_fit.log_likelihood - sim_fit.log_likelihood,
            "sim_auc": sim_fit.click_auc,
            "true_auc": true_fit.click_auc,
            "heldout_steps": sim_fit.n_steps,
        },
        "values": values,
        "kendall_tau": tau,
        "mean_abs_rel_error": float(np.mean([abs(values[n]["rel_error"]) for n in names])),
        "oracle_value": oracle,
        "oracle_stderr": oracle_stderr,
        "oracle_exact": oracle_exact,
        "oracle_policy": world.oracle_policy,
        "logging_value": logging_value,
        "logging_stderr": logging_stderr,
        "logging_exact": logging_exact,
        "deployed": deployed,
        "seconds": {"fit": fit_seconds, **seconds, "total": time.perf_counter() - start},
        "loadavg": {"start": load_start, "end": load_average()},
    }
