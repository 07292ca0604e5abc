"""Worlds whose truth is known: the ground truth side of the fidelity protocol (``docs/fidelity.md``).

A :class:`World` wraps one draw of the IRecGAN synthetic MDP (:class:`~recsim_gym.envs.synthetic_mdp.SyntheticMDP`)
with the settings the protocol needs: slate size, the logging policy, the step cap of a session. It generates logs
(step 1 of the protocol) and gives the exact value of a stationary policy by dynamic programming
(:func:`~recsim_gym.envs.synthetic_mdp.oracle.expected_return`); history-dependent policies are valued by Monte Carlo
in :mod:`recsim_gym.fidelity.rollouts`, with a stated standard error. So is the ``mix`` logging policy of a large
catalogue, whose slate distribution (``C(300, 10)`` subsets of the rank band for 1,000 items) is too large to enumerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs, generate_logs
from recsim_gym.envs.synthetic_mdp.oracle import click_mass, expected_return, oracle_expected_return, policy_click_mass
from recsim_gym.envs.synthetic_mdp.policies import SlatePolicy, make_policy

__all__ = ["WORLDS", "HiddenStatePolicy", "World", "make_world"]

#: Step cap of a session: the registered ``SyntheticMDP-v0`` truncates at 100 steps.
HORIZON = 100


@dataclass(frozen=True)
class World:
    """A synthetic-MDP world used as the truth.

    Attributes:
        name: the world's name in result files (``syntheticmdp``).
        mdp: the MDP draw.
        slate_size: items per slate k.
        logging: the logging policy's name (``random``, ``max``, ``mix``; it reads the hidden state).
        horizon: step cap of every session, in the world and in the learned simulators alike.
    """

    name: str
    mdp: SyntheticMDP
    slate_size: int = 10
    logging: str = "mix"
    horizon: int = HORIZON

    def logs(self, n_sessions: int, seed: int) -> SessionLogs:
        """``n_sessions`` sessions of the logging policy (every session counts, zero-click ones included)."""
        policy = make_policy(self.logging, self.mdp, self.slate_size)
        return generate_logs(policy, n_sessions, seed=seed, count="all")

    def fixed_slate_value(self, slate: np.ndarray) -> float:
        """Exact expected clicks per session of showing the same ``slate`` in every state (dynamic programming)."""
        slate = np.asarray(slate, dtype=np.int64)[None, :]
        mass = np.stack([click_mass(self.mdp, s, slate) for s in range(self.mdp.n_states)])
        return expected_return(self.mdp, mass, self.horizon).mean

    def oracle_value(self) -> float:
        """Exact expected clicks per session of the oracle (top-k true rewards of the hidden state)."""
        return oracle_expected_return(self.mdp, self.slate_size, self.horizon).mean

    def logging_value(self, n: int, seed: int) -> tuple[float, float, bool]:
        """Expected clicks per session of the logging policy: ``(value, standard error, exact)``.

        Exact by dynamic programming where its slate distribution can be enumerated; otherwise (the ``mix`` band of
        a large catalogue) by Monte Carlo over ``n`` sessions of the world, its standard error stated.
        """
        policy = make_policy(self.logging, self.mdp, self.slate_size)
        try:
            return expected_return(self.mdp, policy_click_mass(policy), self.horizon).mean, 0.0, True
        except ValueError:
            from recsim_gym.fidelity.rollouts import policy_value
            from recsim_gym.fidelity.users import WorldUser

            user = WorldUser(self.mdp)
            v = policy_value(user, HiddenStatePolicy(policy, user), n, seed, self.horizon)
            return v.mean, v.stderr, False


class HiddenStatePolicy:
    """A :class:`~recsim_gym.envs.synthetic_mdp.policies.SlatePolicy` that reads the world user's hidden state, as a
    rollout policy (:func:`recsim_gym.fidelity.rollouts.policy_value`); it can run in the world only."""

    def __init__(self, policy: SlatePolicy, user: object) -> None:
        self.policy, self.user = policy, user
        self.name = f"{getattr(policy, 'name', type(policy).__name__)}-state"

    def start(self, n: int) -> None:
        pass

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.policy.act(self.user.state[rows], rng)  # type: ignore[attr-defined]

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        pass


#: name -> (n_states, n_items, slate_size, mdp seed): the registered ``SyntheticMDP-v0`` world; a larger draw (50
#: states, 1,000 items, issue 21) where the history matters more; a tiny one and a tiny "large" one (enough items
#: that the mix band cannot be enumerated) for tests and smoke runs.
WORLDS: dict[str, tuple[int, int, int, int]] = {
    "syntheticmdp": (10, 50, 10, 2019),
    "syntheticmdp-large": (50, 1000, 10, 2019),
    "tiny": (3, 12, 3, 7),
    "tiny-large": (4, 170, 5, 7),
}


def make_world(name: str, logging: str = "mix") -> World:
    """The world ``name`` (one of :data:`WORLDS`).

    Raises:
        ValueError: an unknown name.
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; choose one of {sorted(WORLDS)}")
    n_states, n_items, k, seed = WORLDS[name]
    return World(name, SyntheticMDP.draw(n_states, n_items, seed), k, logging)
