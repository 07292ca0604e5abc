"""Users a policy can be run against: the world itself and each learned simulator, behind one interface.

Every user holds B sessions and answers two calls for a subset ``rows`` of them:

* ``choice_probs(rows, slates)``: ``(len(rows), k + 1)`` probabilities of clicking each slate position, the last
  column being "leave" (the world's failed trial, the GAN user model's no-click option, U's ``EOS``);
* ``advance(rows, items)``: the sessions ``rows`` clicked ``items``; their click history grows by one.

Learned simulators see only the click history (the observation the world's env gives a history-reading policy), so
a policy that acts on the click history can run in the world and in every simulator unchanged. :class:`WorldUser`
also keeps the hidden state, which it alone can see. Learned users also rank every item for the current history
(``top_items``), which the simulator-greedy policy deploys in the world.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from recsim_gym.agents.irecgan.networks import EOS, GO, N_SPECIAL, UserModel
from recsim_gym.data.logs import PAD
from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = ["GANUser", "IRecGANUser", "User", "WorldUser"]


class User(Protocol):
    """What the rollouts need of a user (see the module docstring)."""

    def start(self, n: int, rng: np.random.Generator) -> None: ...

    def restart(self, rows: np.ndarray) -> None: ...

    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray: ...

    def advance(self, rows: np.ndarray, items: np.ndarray) -> None: ...


class WorldUser:
    """The synthetic MDP as a user: click ``a`` of slate ``S`` in state ``s`` with probability ``r(s, a)^2 / R_S``,
    leave otherwise; a click moves the hidden state to ``s' ~ p(. | s, a)`` (``docs/irecgan.md``)."""

    def __init__(self, mdp: SyntheticMDP) -> None:
        self.mdp = mdp
        self.state = np.zeros(0, dtype=np.int64)
        self.rng = np.random.default_rng(0)

    def start(self, n: int, rng: np.random.Generator) -> None:
        self.state = np.zeros(n, dtype=np.int64)
        self.rng = rng

    def restart(self, rows: np.ndarray) -> None:
        """New sessions in ``rows`` (state 0), the others untouched."""
        self.state[rows] = 0

    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        return true_choice_probs(self.mdp, self.state[rows], slates)

    def advance(self, rows: np.ndarray, items: np.ndarray) -> None:
        cdf = self.mdp.transition_cdf[self.state[rows], items]  # (r, m)
        u = self.rng.random(len(rows))
        self.state[rows] = (cdf > u[:, None]).argmax(axis=1)


def true_choice_probs(mdp: SyntheticMDP, states: np.ndarray, slates: np.ndarray) -> np.ndarray:
    """``(B, k + 1)`` true click probabilities of each slate position in ``states``, last column = leave."""
    r = mdp.rewards[states[:, None], slates]
    click = r * r / r.sum(axis=1, keepdims=True)
    return np.concatenate([click, 1.0 - click.sum(axis=1, keepdims=True)], axis=1)


class GANUser:
    """A GAN user model (Chen et al.; PW or LSTM encoder) as a simulator: a softmax over the slate's utilities and
    the no-click option (utility 0), no click ending the session as the world's logs taught it."""

    def __init__(self, model: GANUserModel) -> None:
        self.model = model.eval()
        self.window = min(model.config.history_window, 100)  # a session has at most 100 steps
        self.history = np.full((0, self.window), PAD, dtype=np.int64)

    def start(self, n: int, rng: np.random.Generator) -> None:
        self.history = np.full((n, self.window), PAD, dtype=np.int64)

    def restart(self, rows: np.ndarray) -> None:
        self.history[rows] = PAD

    @torch.no_grad()
    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        hist = torch.from_numpy(self.history[rows])
        return self.model.choice_probs(hist, torch.from_numpy(slates)).double().numpy()

    def advance(self, rows: np.ndarray, items: np.ndarray) -> None:
        self.history[rows, 1:] = self.history[rows, :-1]
        self.history[rows, 0] = items

    @torch.no_grad()
    def top_items(self, rows: np.ndarray, k: int) -> np.ndarray:
        z = self.model.encode(torch.from_numpy(self.history[rows]))
        return self.model.all_utilities(z).topk(k, dim=1).indices.numpy().astype(np.int64)


class IRecGANUser:
    """IRecGAN's user model U as a simulator: an LSTM over the clicks and a softmax over the slate plus ``EOS``."""

    def __init__(self, model: UserModel) -> None:
        self.model = model.eval()
        self.out = torch.zeros(0)
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def start(self, n: int, rng: np.random.Generator) -> None:
        out, self.state = self.model.encoder(torch.full((n, 1), GO, dtype=torch.long))
        self.out = out[:, 0]

    @torch.no_grad()
    def restart(self, rows: np.ndarray) -> None:
        assert self.state is not None
        out, (h0, c0) = self.model.encoder(torch.full((1, 1), GO, dtype=torch.long))
        idx = torch.from_numpy(rows)
        self.out[idx] = out[:, 0]
        self.state[0][:, idx], self.state[1][:, idx] = h0, c0

    @torch.no_grad()
    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        lists = torch.from_numpy(slates + N_SPECIAL)
        lists = torch.cat([lists, torch.full((len(rows), 1), EOS, dtype=torch.long)], dim=1)
        logits = self.model.list_logits(self.out[torch.from_numpy(rows)], lists)
        return logits.softmax(-1).double().numpy()

    @torch.no_grad()
    def advance(self, rows: np.ndarray, items: np.ndarray) -> None:
        assert self.state is not None
        idx = torch.from_numpy(rows)
        h, c = self.state
        tokens = torch.from_numpy(items + N_SPECIAL).view(-1, 1)
        out, (h_new, c_new) = self.model.encoder(tokens, (h[:, idx].contiguous(), c[:, idx].contiguous()))
        self.out[idx] = out[:, 0]
        h[:, idx], c[:, idx] = h_new, c_new

    @torch.no_grad()
    def top_items(self, rows: np.ndarray, k: int) -> np.ndarray:
        logits = self.model.item_logits(self.out[torch.from_numpy(rows)])
        return logits.topk(k, dim=1).indices.numpy().astype(np.int64)
