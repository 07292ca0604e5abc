"""Users a policy can be run against: the world itself and each learned simulator, behind one interface.

Every user holds B sessions and answers two calls for a subset ``rows`` of them:

* ``choice_probs(rows, slates)``: ``(len(rows), k + 1)`` probabilities of clicking each slate position, the last
  column being "leave" (the world's failed trial, the GAN user model's no-click option, U's ``EOS``);
* ``advance(rows, items)``: the sessions ``rows`` clicked ``items``; their click history grows by one.

Learned simulators see only the click history (the observation the world's env gives a history-reading policy), so
a policy that acts on the click history can run in the world and in every simulator unchanged. :class:`WorldUser`
also keeps the hidden state, which it alone can see. Learned users also rank every item for the current history
(``top_items``), which the simulator-greedy policy deploys in the world.

Two families do not model a choice over a slate with a leave option, and are adapted here (``docs/fidelity.md``):
:class:`L2GANUser` (the min-max GAN user model always clicks: its leave probability comes from the Shannon-entropy
model it starts from) and :class:`RecSimuUser` (per-item feedback ``p(pos | s, a)``, read as each item's probability of
being the page's click).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from recsim_gym.agents.irecgan.networks import EOS, GO, N_SPECIAL, UserModel
from recsim_gym.data.logs import PAD
from recsim_gym.envs.synthetic_mdp import SyntheticMDP
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel
from recsim_gym.user_models.recsimu.model import Discriminator
from recsim_gym.user_models.recsimu.training import corrected_p_pos

__all__ = ["GANUser", "IRecGANUser", "L2GANUser", "RecSimuUser", "User", "WorldUser"]


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


class L2GANUser(GANUser):
    """The min-max (L2) GAN user model as a simulator.

    Its behaviour ``phi`` is a distribution over the displayed items only: a user simulated by ``phi`` always clicks
    (``docs/user_model.md``, L2 min-max case), so it alone could never end a session. The probability of leaving comes
    from ``leave_model``, the Shannon-entropy model the min-max started from (its no-click option); given a click,
    the item is drawn from ``phi``: ``P(a) = (1 - p_leave) phi(a)``. The L2 simulator therefore differs from the
    entropy one only in *which* item is clicked.
    """

    def __init__(self, model: AdversarialUserModel, leave_model: GANUserModel) -> None:
        super().__init__(leave_model)
        self.minmax = model.eval()
        assert model.behaviour is not None, "a learned phi (inner='learned') is needed to rank every item"
        self.behaviour = model.behaviour

    @torch.no_grad()
    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        hist, items = torch.from_numpy(self.history[rows]), torch.from_numpy(slates)
        leave = self.model.choice_probs(hist, items)[:, -1:].double()
        phi = self.minmax.behaviour_probs(hist, None, items).double()
        return torch.cat([(1.0 - leave) * phi, leave], dim=1).numpy()

    @torch.no_grad()
    def top_items(self, rows: np.ndarray, k: int) -> np.ndarray:
        z = self.behaviour.encode(torch.from_numpy(self.history[rows]))
        return self.behaviour.all_utilities(z).topk(k, dim=1).indices.numpy().astype(np.int64)


class RecSimuUser:
    """RecSimu as a slate simulator: per-item feedback read as each item's chance of being the page's click.

    RecSimu's discriminator gives ``p(pos | s, a)`` for one item ``a`` in state ``s`` (the last ``N`` (item, feedback)
    steps of the session's *earlier* pages, left-padded, most recent last). It was fitted on pages whose label is
    "this shown item was the click" (the failing last display a page of negatives), so the ten values of a page
    estimate the page's click distribution, and their sum the chance of a click (``docs/recsimu.md``, ground truth).
    The slate is scored in one state (as in training: the items of a page do not see each other's feedback):
    ``P(a_j) = p_j / max(1, sum_i p_i)``, and leaving is the rest, ``1 - sum_j P(a_j)`` (0 when the sum exceeds 1).
    A click appends the whole page to the state, in a random order drawn from the session's generator (the data
    path shuffles each page), the clicked item positive and the others negative; a session ends on "leave".
    ``p(pos)`` is D's real block with the up-sampling undone, as the ``RecSimu-*`` envs draw it. Items beyond the
    fitted catalogue (ids above every logged one) get the zero embedding, as RecSimu gives items absent from its
    training steps.
    """

    def __init__(self, model: Discriminator, history_len: int, upsample: float, n_items: int) -> None:
        self.model, self.n, self.upsample, self.n_items = model.eval(), history_len, upsample, n_items
        self.known = model.config.n_items  # ids the embedding table holds
        self.items = np.full((0, history_len), PAD, dtype=np.int64)
        self.feedback = np.zeros((0, history_len), dtype=np.int64)
        self.slates = np.zeros((0, 0), dtype=np.int64)
        self.rng = np.random.default_rng(0)

    def start(self, n: int, rng: np.random.Generator) -> None:
        self.items = np.full((n, self.n), PAD, dtype=np.int64)
        self.feedback = np.zeros((n, self.n), dtype=np.int64)
        self.slates = np.zeros((n, 0), dtype=np.int64)
        self.rng = rng

    def restart(self, rows: np.ndarray) -> None:
        self.items[rows] = PAD
        self.feedback[rows] = 0

    def _ids(self, items: np.ndarray) -> torch.Tensor:
        # An id the table lacks reads as PAD, whose embedding is masked to zero (a state's PAD steps also skip the
        # GRU, so such a step is dropped from the state; it cannot occur when every item was logged).
        return torch.from_numpy(np.where(items < self.known, items, PAD))

    @torch.no_grad()
    def _states(self, rows: np.ndarray) -> torch.Tensor:
        return self.model.encode(self._ids(self.items[rows]), torch.from_numpy(self.feedback[rows]))

    @torch.no_grad()
    def p_pos(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``(len(rows), m)`` corrected ``p(pos)`` of ``items`` ``(len(rows), m)`` in each row's state."""
        state = self._states(rows)
        b, m = items.shape
        emb = self.model.embed(self._ids(items.reshape(-1)))
        logits = self.model.logits(state.repeat_interleave(m, dim=0), emb)[:, : self.model.config.n_feedback]
        p = torch.softmax(logits, dim=-1)[:, 0].double().numpy().reshape(b, m)
        return corrected_p_pos(p, self.upsample)

    def choice_probs(self, rows: np.ndarray, slates: np.ndarray) -> np.ndarray:
        if self.slates.shape[1] != slates.shape[1]:
            self.slates = np.zeros((len(self.items), slates.shape[1]), dtype=np.int64)
        self.slates[rows] = slates  # the page a click in advance() appends
        p = self.p_pos(rows, slates)
        click = p / np.maximum(1.0, p.sum(axis=1, keepdims=True))
        return np.concatenate([click, np.maximum(0.0, 1.0 - click.sum(axis=1, keepdims=True))], axis=1)

    def advance(self, rows: np.ndarray, items: np.ndarray) -> None:
        if rows.size == 0:
            return
        page = self.slates[rows]
        page = np.take_along_axis(page, np.argsort(self.rng.random(page.shape), axis=1), axis=1)
        fb = np.where(page == items[:, None], 0, 1)  # class 0 positive, 1 negative
        self.items[rows] = np.concatenate([self.items[rows], page], axis=1)[:, -self.n :]
        self.feedback[rows] = np.concatenate([self.feedback[rows], fb], axis=1)[:, -self.n :]

    @torch.no_grad()
    def top_items(self, rows: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros((len(rows), k), dtype=np.int64)
        step = max(1, 200_000 // self.n_items)  # rows per chunk: the MLP sees rows x n_items candidates at once
        for i in range(0, len(rows), step):
            part = rows[i : i + step]
            p = self.p_pos(part, np.tile(np.arange(self.n_items), (len(part), 1)))
            out[i : i + step] = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return out


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
