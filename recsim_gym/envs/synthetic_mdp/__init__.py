"""SyntheticMDP-v0: the IRecGAN simulated recommendation MDP (Bai et al., NeurIPS 2019, §7.1) and its world.

One place for the family (see ``docs/architecture.md``):

| module         | holds                                                                                     |
|----------------|-------------------------------------------------------------------------------------------|
| ``mdp``        | :class:`SyntheticMDP` (one draw of the world) and the transition kernel of B sessions      |
| ``env``        | :class:`SyntheticMDPEnv`, one session                                                      |
| ``vector_env`` | :class:`SyntheticMDPVectorEnv`, B sessions in numpy (on :mod:`recsim_gym.envs.vector`)    |
| ``policies``   | logging policies (random, max, mix, oracle)                                               |
| ``logs``       | offline session logs drawn from them (and their Chen et al. / IRecGAN file formats)       |
| ``oracle``     | ground truth: optimal slates, exact expected returns                                      |
| ``metrics``    | offline and online metrics (coverage@r, cumulative reward)                                |
| ``benchmark``  | ``python -m recsim_gym.envs.synthetic_mdp.benchmark``: throughput and sanity figures      |
| ``commands``   | the ``recsim-gym`` subcommands of the family                                              |

A data source that needs no download: ``generate_logs("mix", 1000, seed=0).to_chen_log()`` gives a log in the Chen
et al. schema that the GAN user-model pipeline reads like the Yelp/Taobao/RecSys15 files. The envs import no
pandas: the log, oracle, policy and metric names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from recsim_gym.envs.slate import REWARD_MODES
from recsim_gym.envs.synthetic_mdp.env import UNIFORM_BLOCK, SyntheticMDPEnv
from recsim_gym.envs.synthetic_mdp.mdp import (
    DEFAULT_MDP_SEED,
    SyntheticMDP,
    sample_transitions,
    slate_click_probability,
)
from recsim_gym.envs.synthetic_mdp.vector_env import SyntheticMDPVectorEnv
from recsim_gym.envs.vector import parse_autoreset_mode

# Name -> submodule, for the names loaded on first use (PEP 562).
_LAZY = {
    **dict.fromkeys(("CHEN_COLUMNS", "SessionLogs", "generate_logs", "to_chen_log", "write_chen_log"), "logs"),
    **dict.fromkeys(
        ("OnlineEvaluation", "coverage_at_r", "cumulative_reward", "evaluate_logs", "evaluate_online"), "metrics"
    ),
    **dict.fromkeys(
        ("ReturnStats", "expected_return", "oracle_expected_return", "oracle_slate", "policy_click_mass"), "oracle"
    ),
    **dict.fromkeys(
        ("POLICIES", "MaxPolicy", "MixPolicy", "OraclePolicy", "RandomPolicy", "SlatePolicy", "make_policy"),
        "policies",
    ),
}

__all__ = [
    "CHEN_COLUMNS",
    "DEFAULT_MDP_SEED",
    "POLICIES",
    "REWARD_MODES",
    "UNIFORM_BLOCK",
    "MaxPolicy",
    "MixPolicy",
    "OnlineEvaluation",
    "OraclePolicy",
    "RandomPolicy",
    "ReturnStats",
    "SessionLogs",
    "SlatePolicy",
    "SyntheticMDP",
    "SyntheticMDPEnv",
    "SyntheticMDPVectorEnv",
    "coverage_at_r",
    "cumulative_reward",
    "evaluate_logs",
    "evaluate_online",
    "expected_return",
    "generate_logs",
    "make_policy",
    "oracle_expected_return",
    "oracle_slate",
    "parse_autoreset_mode",
    "policy_click_mass",
    "sample_transitions",
    "slate_click_probability",
    "to_chen_log",
    "write_chen_log",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
