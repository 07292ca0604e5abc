"""The IRecGAN synthetic recommendation MDP (Bai et al. 2019, §7.1): logging policies, offline logs, ground truth
and online metrics around :mod:`recsim_gym.envs.synthetic_mdp`.

A data source that needs no download: ``generate_logs("mix", 1000, seed=0).to_chen_log()`` gives a log in the Chen
et al. schema that the GAN user-model pipeline reads like the Yelp/Taobao/RecSys15 files.
"""

from __future__ import annotations

from recsim_gym.envs.synthetic_mdp import DEFAULT_MDP_SEED, SyntheticMDP
from recsim_gym.synthetic.logs import CHEN_COLUMNS, SessionLogs, generate_logs, to_chen_log, write_chen_log
from recsim_gym.synthetic.metrics import (
    OnlineEvaluation,
    coverage_at_r,
    cumulative_reward,
    evaluate_logs,
    evaluate_online,
)
from recsim_gym.synthetic.oracle import (
    ReturnStats,
    expected_return,
    oracle_expected_return,
    oracle_slate,
    policy_click_mass,
)
from recsim_gym.synthetic.policies import (
    POLICIES,
    MaxPolicy,
    MixPolicy,
    OraclePolicy,
    RandomPolicy,
    SlatePolicy,
    make_policy,
)

__all__ = [
    "CHEN_COLUMNS",
    "DEFAULT_MDP_SEED",
    "POLICIES",
    "MaxPolicy",
    "MixPolicy",
    "OnlineEvaluation",
    "OraclePolicy",
    "RandomPolicy",
    "ReturnStats",
    "SessionLogs",
    "SlatePolicy",
    "SyntheticMDP",
    "coverage_at_r",
    "cumulative_reward",
    "evaluate_logs",
    "evaluate_online",
    "expected_return",
    "generate_logs",
    "make_policy",
    "oracle_expected_return",
    "oracle_slate",
    "policy_click_mass",
    "to_chen_log",
    "write_chen_log",
]
