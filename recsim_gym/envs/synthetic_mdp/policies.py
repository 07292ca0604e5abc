"""Ground-truth slate policies of the IRecGAN simulation: the logging policies of
docs/irecgan.md#logging-policies and the oracle.

They read the true hidden state and the true rewards, so they are tools for generating logs and for reference
figures, not agents. Each maps a state (int) or a batch of states ``(B,)`` to a slate ``(k,)`` or ``(B, k)`` of
distinct item ids::

    policy = MixPolicy(SyntheticMDP.draw())
    slate = policy.act(3, rng)                   # (k,)
    slates = policy.act(np.array([0, 3]), rng)   # (2, k)
    slates = policy(obs, rng)                    # obs: an observation dict with a "state" key (observe_state=True)

A single call is a batch of one, so ``act(s, rng)`` and ``act(np.array([s]), rng)[0]`` consume the generator
identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from recsim_gym.envs.synthetic_mdp import SyntheticMDP

__all__ = ["POLICIES", "MaxPolicy", "MixPolicy", "OraclePolicy", "RandomPolicy", "SlatePolicy", "make_policy"]


class SlatePolicy:
    """Base class: a policy that sees the hidden state of :class:`~recsim_gym.envs.synthetic_mdp.SyntheticMDPEnv`.

    Args:
        mdp: the MDP whose true rewards the policy may read.
        slate_size: slate size k (10 in the paper).
    """

    #: Short name used by the CLI and in log metadata.
    name: ClassVar[str] = "base"
    #: Whether :meth:`act` draws from ``rng`` (deterministic policies accept ``rng=None``).
    stochastic: ClassVar[bool] = False

    def __init__(self, mdp: SyntheticMDP, slate_size: int = 10) -> None:
        if not 1 <= slate_size <= mdp.n_items:
            raise ValueError(f"slate_size must lie in [1, n_items={mdp.n_items}], got {slate_size}")
        self.mdp = mdp
        self.slate_size = int(slate_size)

    def act(self, state: int | np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Slate(s) for ``state``: an int gives ``(k,)``, an int array ``(B,)`` gives ``(B, k)`` (int64, new arrays).

        Raises:
            ValueError: a state out of range, or ``rng`` missing for a stochastic policy.
        """
        states = np.asarray(state)
        if not np.issubdtype(states.dtype, np.integer) or states.ndim > 1:
            raise ValueError(f"state must be an int or a 1-D int array, got {states.dtype} with shape {states.shape}")
        if ((states < 0) | (states >= self.mdp.n_states)).any():
            raise ValueError(f"states must lie in [0, {self.mdp.n_states})")
        if self.stochastic and rng is None:
            raise ValueError(f"{type(self).__name__} is stochastic: pass a numpy Generator as rng")
        batch = np.atleast_1d(states).astype(np.int64)
        slates = self._act_batch(batch, rng)
        return slates[0] if states.ndim == 0 else slates

    def __call__(self, obs: Mapping[str, Any] | int | np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Same as :meth:`act`, also accepting an observation dict that holds the hidden state (``"state"`` key)."""
        if isinstance(obs, Mapping):
            if "state" not in obs:
                raise ValueError("the observation has no 'state' key: make the env with observe_state=True")
            obs = obs["state"]
        return self.act(obs, rng)

    def _act_batch(self, states: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mdp_seed={self.mdp.seed}, slate_size={self.slate_size})"


class RandomPolicy(SlatePolicy):
    """π_random: a uniformly random set of k distinct items, in random order."""

    name = "random"
    stochastic = True

    def _act_batch(self, states: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        keys = rng.random((states.shape[0], self.mdp.n_items))
        return np.argsort(keys, axis=1)[:, : self.slate_size].astype(np.int64)


class MaxPolicy(SlatePolicy):
    """π_max: the k items with the highest true reward in the current state, best first (deterministic)."""

    name = "max"

    def _act_batch(self, states: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return self.mdp.ranking[states, : self.slate_size].astype(np.int64)


class OraclePolicy(MaxPolicy):
    """The oracle slate: top-k true rewards of the current state (the same rule as π_max).

    It maximises the one-step click probability whenever the top-k rewards are large (any swap of a top-k item
    ``x`` for a lower one ``y`` lowers ``sum r^2 / sum r`` when ``x + y`` exceeds it, true for Uniform(0, 1) draws in
    practice), but it ignores where clicks lead, so it is the paper's reference policy, not a proven optimum of the
    MDP. Its expected return is computed exactly by :func:`recsim_gym.envs.synthetic_mdp.oracle.oracle_expected_return`.
    """

    name = "oracle"


class MixPolicy(SlatePolicy):
    """π_mix (released code ``get_policy``): the π_max slate with probability ``p_max``, otherwise k items drawn
    without replacement from the items ranked ``[n // 5, n // 2)`` by true reward (ranks 11-25 of 50, the paper's
    "top 20 %-50 %"; the code's Python-2 integer divisions ``50/5``, ``50/2``).

    Args:
        mdp: the MDP.
        slate_size: slate size k.
        p_max: probability of showing the π_max slate (0.5 in the code).

    Raises:
        ValueError: the band holds fewer than k items.
    """

    name = "mix"
    stochastic = True

    def __init__(self, mdp: SyntheticMDP, slate_size: int = 10, p_max: float = 0.5) -> None:
        super().__init__(mdp, slate_size)
        if not 0.0 <= p_max <= 1.0:
            raise ValueError(f"p_max must lie in [0, 1], got {p_max}")
        self.p_max = float(p_max)
        self.band = (mdp.n_items // 5, mdp.n_items // 2)
        if self.band[1] - self.band[0] < self.slate_size:
            raise ValueError(
                f"the mix band of ranks [{self.band[0]}, {self.band[1]}) holds fewer than slate_size={slate_size} items"
            )

    def _act_batch(self, states: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        assert rng is not None
        lo, hi = self.band
        b, k = states.shape[0], self.slate_size
        # Both draws are made for every row so that the generator advances by the same amount whatever the coins say.
        use_max = rng.random(b) < self.p_max
        pick = np.argsort(rng.random((b, hi - lo)), axis=1)[:, :k]
        band = self.mdp.ranking[states, lo:hi]
        sampled = np.take_along_axis(band, pick, axis=1)
        return np.where(use_max[:, None], self.mdp.ranking[states, :k], sampled).astype(np.int64)


#: Policy classes by CLI name.
POLICIES: dict[str, type[SlatePolicy]] = {cls.name: cls for cls in (RandomPolicy, MaxPolicy, MixPolicy, OraclePolicy)}


def make_policy(name: str, mdp: SyntheticMDP, slate_size: int = 10) -> SlatePolicy:
    """Build a policy by name (``random``, ``max``, ``mix``, ``oracle``).

    Raises:
        ValueError: an unknown name.
    """
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}") from None
    return cls(mdp, slate_size)
