"""A learned world used as the truth: a GAN user model (the shipped ``gan-pw-yelp-train``) as the "real users".

The synthetic MDPs of :mod:`recsim_gym.fidelity.worlds` have a truth that is simple by construction (a handful of
hidden states). Here the truth has the structure a model fitted on real logs has: 804 Yelp items, a reward network
``r(s, a)`` over a position-weighted click history. The refitted simulators then face realistic structure, and the
truth is still known exactly: it is the model.

**The user.** Shown slate ``S`` with click history ``h``, the user clicks ``a in S`` with probability
``exp(r(h, a)) / (exp(u_0) + sum_{b in S} exp(r(h, b)))`` and otherwise leaves, which ends the session; a click
appends ``a`` to the history. This is the model's own softmax choice with its no-click option, except that "no click"
has utility ``u_0`` (the world's ``leave_utility``) instead of 0. Why: the shipped Yelp model's utilities average 4.3
(a user of the Yelp logs almost always clicks), so with ``u_0 = 0`` a random slate is clicked 99.8 % of the time and
every session of every policy would run to the step cap, leaving nothing for a ranking of policies to see.
``u_0 = 6`` makes a random slate's first click 61 % likely and the model's own top 5 items' 95 % (measured at the
empty history over 20,000 random slates), so a session's length depends on the policy. Given a click, which item is
clicked is exactly the shipped model's choice.

**Logging policies** (step 1): ``random`` (k distinct items uniformly) and ``popularity`` (the default): k distinct
items drawn without replacement with probabilities a softmax of the items' log-popularity, ``p_i ∝ 1 + c_i``, where
``c_i`` counts the clicks on item ``i`` in a pilot of 1,000 random-slate sessions of the world (seed 0). Both read
nothing of the user, so they run in every simulator as they run in the world.

**The panel** (step 4): random, the popular and unpopular fixed slates of the logs (as in the MDP worlds), the
popularity policy, and the true model's ``greedy-true`` (its k best items for the session's history) and
``worst-true`` (its k worst). Each keeps its own copy of the session's click history, so it runs in a simulator too.

**The oracle** is not known exactly: the world's reference is its best known policy, ``greedy-true`` (it maximises
the chance of the next click; a policy that plans further could do better, so a deployed policy can score above
100 %). Every world value here is Monte Carlo, its standard error stated.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch

from recsim_gym.envs.synthetic_mdp.logs import SessionLogs
from recsim_gym.fidelity.panel import FixedSlatePolicy, RandomSlates, popularity
from recsim_gym.fidelity.rollouts import PredictiveFit, policy_value, predictive_fit, record_sessions
from recsim_gym.fidelity.users import GANUser
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = ["GAN_WORLDS", "GANWorld", "GANWorldUser", "PopularityPolicy", "TrueRanking", "make_gan_world"]

#: Sessions and seed of the random-slate pilot whose clicks define item popularity.
PILOT_SESSIONS, PILOT_SEED = 1000, 0


class GANWorldUser(GANUser):
    """A GAN user model as the world's user: its softmax choice over the slate, leaving with utility ``leave_utility``
    (see the module docstring)."""

    def __init__(self, model: GANUserModel, leave_utility: float) -> None:
        super().__init__(model)
        self.leave_utility = float(leave_utility)

    @torch.no_grad()
    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        z = self.model.encode(torch.from_numpy(self.history[rows]))
        u = self.model.utilities(z, torch.from_numpy(slates)).double()
        # softmax over [u_1 .. u_k, u_0] = the model's softmax over [u - u_0, 0]
        return self.model.choice_log_probs(u - self.leave_utility).exp().numpy()


class PopularityPolicy:
    """k distinct items drawn without replacement with probabilities ``∝ weights`` (Gumbel top-k), whatever the
    history: the ``popularity`` logging policy of a learned world."""

    name = "popularity"

    def __init__(self, weights: np.ndarray, k: int) -> None:
        self.log_w, self.k = np.log(np.asarray(weights, dtype=np.float64)), k

    def start(self, n: int) -> None:
        pass

    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        keys = self.log_w + rng.gumbel(size=(len(rows), self.log_w.size))
        top = np.argpartition(-keys, self.k - 1, axis=1)[:, : self.k]
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1).astype(np.int64)

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        pass


class TrueRanking:
    """The true model's k best (``greedy-true``) or k worst (``worst-true``) items for the session's click history;
    it tracks the history itself, so it runs in any simulator."""

    def __init__(self, model: GANUserModel, k: int, best: bool = True) -> None:
        self.tracker, self.k, self.best = GANUser(model), k, best
        self.name = "greedy-true" if best else "worst-true"

    def start(self, n: int) -> None:
        self.tracker.start(n, np.random.default_rng(0))

    @torch.no_grad()
    def act(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        model = self.tracker.model
        u = model.all_utilities(model.encode(torch.from_numpy(self.tracker.history[rows])))
        return u.topk(self.k, dim=1, largest=self.best).indices.numpy().astype(np.int64)

    def observe(self, rows: np.ndarray, slates: np.ndarray, items: np.ndarray) -> None:
        self.tracker.advance(rows, items)


class GANWorld:
    """A GAN user model used as the truth (see the module docstring).

    Attributes:
        name: the world's name in result files (``gan-pw-yelp-train``).
        model: the user model.
        leave_utility: ``u_0``, the utility of leaving.
        slate_size: items per slate k (5, ``GANUser-Yelp-v0``'s default).
        logging: ``popularity`` (default) or ``random``.
        horizon: step cap of every session (50, ``GANUser-Yelp-v0``'s horizon).
    """

    LOGGING = ("popularity", "random")
    #: The oracle is Monte Carlo (the best known policy), not exact.
    oracle_policy = "greedy-true"

    def __init__(
        self,
        name: str,
        model: GANUserModel,
        leave_utility: float,
        slate_size: int = 5,
        logging: str = "popularity",
        horizon: int = 50,
    ) -> None:
        if logging not in self.LOGGING:
            raise ValueError(f"world {name!r} logs with {list(self.LOGGING)}, not {logging!r}")
        self.name, self.model, self.leave_utility = name, model.eval(), leave_utility
        self.slate_size, self.logging, self.horizon = slate_size, logging, horizon
        self._oracle: dict[tuple[int, int], tuple[float, float, bool]] = {}

    @property
    def n_items(self) -> int:
        return int(self.model.config.n_items)

    def user(self) -> GANWorldUser:
        """A fresh world user (the truth, for rollouts)."""
        return GANWorldUser(self.model, self.leave_utility)

    @cached_property
    def popularity_weights(self) -> np.ndarray:
        """``1 + c_i``: the clicks on each item in a pilot of random-slate sessions (see the module docstring)."""
        pilot = record_sessions(
            self.user(), RandomSlates(self.n_items, self.slate_size), PILOT_SESSIONS, PILOT_SEED, self.horizon, {}
        )
        return 1.0 + np.bincount(pilot.click[pilot.click >= 0], minlength=self.n_items)

    def logging_policy(self) -> Any:
        if self.logging == "random":
            return RandomSlates(self.n_items, self.slate_size)
        return PopularityPolicy(self.popularity_weights, self.slate_size)

    def logs(self, n_sessions: int, seed: int) -> SessionLogs:
        """``n_sessions`` sessions of the logging policy, every step kept (zero-click sessions included)."""
        meta = {"world": self.name, "policy": self.logging, "n_items": self.n_items, "slate_size": self.slate_size}
        return record_sessions(self.user(), self.logging_policy(), n_sessions, seed, self.horizon, meta)

    def panel(self, logs: SessionLogs) -> list:
        """Random, popular / unpopular (fixed slates from the logs' click counts), popularity, greedy- and
        worst-true."""
        order = popularity(logs, self.n_items)
        k = self.slate_size
        return [
            RandomSlates(self.n_items, k),
            FixedSlatePolicy("popular", order[:k]),
            FixedSlatePolicy("unpopular", order[-k:]),
            PopularityPolicy(self.popularity_weights, k),
            TrueRanking(self.model, k, best=True),
            TrueRanking(self.model, k, best=False),
        ]

    def exact_value(self, policy: object) -> float | None:
        """No policy is valued exactly here (the history is the state): always None."""
        return None

    def oracle(self, n: int, seed: int) -> tuple[float, float, bool]:
        """``(value, standard error, exact=False)`` of the best known policy, ``greedy-true``, over ``n`` sessions."""
        if (n, seed) not in self._oracle:
            v = policy_value(self.user(), TrueRanking(self.model, self.slate_size), n, seed, self.horizon)
            self._oracle[n, seed] = (v.mean, v.stderr, False)
        return self._oracle[n, seed]

    def logging_value(self, n: int, seed: int) -> tuple[float, float, bool]:
        """``(value, standard error, exact=False)`` of the logging policy, by Monte Carlo over ``n`` sessions."""
        v = policy_value(self.user(), self.logging_policy(), n, seed, self.horizon)
        return v.mean, v.stderr, False

    def true_fit(self, heldout: SessionLogs) -> PredictiveFit:
        """The true model's own predictive figures on ``heldout`` (it needs only the logged history)."""
        return predictive_fit(self.user(), heldout)


#: name -> (shipped model id, or "random:<n_items>:<seed>" for a random model; leave utility u_0; slate size;
#: horizon). ``tiny-gan`` is a 30-item random model for tests and smoke runs.
GAN_WORLDS: dict[str, tuple[str, float, int, int]] = {
    "gan-pw-yelp-train": ("gan-pw-yelp-train", 6.0, 5, 50),
    "tiny-gan": ("random:30:3", 1.0, 3, 20),
}


def make_gan_world(name: str, logging: str | None = None) -> GANWorld:
    """The learned world ``name`` (one of :data:`GAN_WORLDS`), logging with ``logging`` (None: ``popularity``).

    Raises:
        ValueError: an unknown name or logging policy.
    """
    if name not in GAN_WORLDS:
        raise ValueError(f"unknown learned world {name!r}; choose one of {sorted(GAN_WORLDS)}")
    source, leave, k, horizon = GAN_WORLDS[name]
    if source.startswith("random:"):
        from recsim_gym.user_models.gan_user_model import random_user_model

        _, n_items, seed = source.split(":")
        model = random_user_model(int(n_items), seed=int(seed))
    else:
        from recsim_gym.user_models.storage import load_user_model

        model = load_user_model(source)
        assert isinstance(model, GANUserModel), f"{source} is not a Shannon-entropy GAN user model"
    return GANWorld(name, model, leave, k, logging or "popularity", horizon)
