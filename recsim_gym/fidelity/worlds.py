"""Worlds whose truth is known: the ground truth side of the fidelity protocol (``docs/fidelity.md``).

A :class:`World` wraps one draw of the IRecGAN synthetic MDP (:class:`~recsim_gym.envs.synthetic_mdp.SyntheticMDP`)
with the settings the protocol needs: slate size, the logging policy, the step cap of a session. It generates logs
(step 1 of the protocol) and gives the exact value of a stationary policy by dynamic programming
(:func:`~recsim_gym.envs.synthetic_mdp.oracle.expected_return`); history-dependent policies are valued by Monte Carlo
in :mod:`recsim_gym.fidelity.rollouts`, with a stated standard error. So is the ``mix`` logging policy of a large
catalogue, whose slate distribution (``C(300, 10)`` subsets of the rank band for 1,000 items) is too large to enumerate.

A learned world (:class:`~recsim_gym.fidelity.gan_world.GANWorld`, a GAN user model as the truth) answers the same
calls: ``n_items``, ``slate_size``, ``horizon``, ``user()`` (the truth as a rollout user), ``logs(n, seed)``,
``panel(logs)``, ``exact_value(policy)`` (None where only Monte Carlo can value it), ``oracle(n, seed)`` and
``logging_value(n, seed)`` (``(value, standard error, exact)``), ``true_fit(heldout)``. :func:`make_world` gives
either by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs, generate_logs
from recsim_gym.envs.synthetic_mdp.oracle import click_mass, expected_return, oracle_expected_return, policy_click_mass
from recsim_gym.envs.synthetic_mdp.policies import SlatePolicy, make_policy
from recsim_gym.fidelity.gan_world import GAN_WORLDS, GANWorld, make_gan_world
from recsim_gym.fidelity.panel import FixedSlatePolicy, make_panel
from recsim_gym.fidelity.rollouts import PredictiveFit, predictive_fit
from recsim_gym.fidelity.users import WorldUser

__all__ = ["ALL_WORLDS", "WORLDS", "HiddenStatePolicy", "World", "make_world"]

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

    LOGGING: ClassVar[tuple[str, ...]] = ("mix", "random", "max")
    #: The oracle reads the hidden state and is valued exactly.
    oracle_policy: ClassVar[str] = "oracle"

    @property
    def n_items(self) -> int:
        return self.mdp.n_items

    def user(self) -> WorldUser:
        """A fresh world user (the truth, for rollouts)."""
        return WorldUser(self.mdp)

    def panel(self, logs: SessionLogs) -> list:
        """The panel of policies of step 4 (:func:`~recsim_gym.fidelity.panel.make_panel`)."""
        return make_panel(self.mdp, self.slate_size, logs)

    def exact_value(self, policy: object) -> float | None:
        """A fixed slate's exact value (dynamic programming); None for any other policy (valued by Monte Carlo)."""
        return self.fixed_slate_value(policy.slate) if isinstance(policy, FixedSlatePolicy) else None

    def oracle(self, n: int, seed: int) -> tuple[float, float, bool]:
        """``(value, 0, exact=True)`` of the oracle (``n`` and ``seed`` unused: the value is exact)."""
        return self.oracle_value(), 0.0, True

    def true_fit(self, heldout: SessionLogs) -> PredictiveFit:
        """The true model's own predictive figures on ``heldout``: it is given the logged hidden state."""
        return predictive_fit(WorldUser(self.mdp), heldout, true_states=True)

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


def make_world(name: str, logging: str | None = None) -> World | GANWorld:
    """The world ``name``: a synthetic MDP of :data:`WORLDS` or a learned world of
    :data:`~recsim_gym.fidelity.gan_world.GAN_WORLDS`; ``logging``: its logging policy (None: the world's default,
    ``mix`` for an MDP, ``popularity`` for a learned world).

    Raises:
        ValueError: an unknown name, or a logging policy the world does not have.
    """
    if name in GAN_WORLDS:
        return make_gan_world(name, logging)
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; choose one of {sorted(ALL_WORLDS)}")
    logging = logging or "mix"
    if logging not in World.LOGGING:
        raise ValueError(f"world {name!r} logs with {list(World.LOGGING)}, not {logging!r}")
    n_states, n_items, k, seed = WORLDS[name]
    return World(name, SyntheticMDP.draw(n_states, n_items, seed), k, logging)


#: Every world's name: the synthetic MDPs, then the learned worlds.
ALL_WORLDS: tuple[str, ...] = (*WORLDS, *GAN_WORLDS)
