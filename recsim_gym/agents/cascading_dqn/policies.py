"""Q-networks and SB3 policies of the cascading DQN (Chen et al., ICML 2019, §5) and of its additive baseline.

Shapes used throughout: ``B`` observations, ``n`` action entries (catalogue items, or positions in the candidate list
when the env samples candidates), ``k`` slate size, ``d`` embedding width, ``l`` hidden width of a Q-network.

* :class:`SlateStateEncoder` reads a slate env's ``Dict`` observation: the click history through a position-weight
  embedding (the paper's Eq. 4, the same module the user model uses), the entries that may be shown
  (``candidate_mask``), the item id behind each action entry (``candidates``) and any extra ``Discrete``/``Box`` entry
  (e.g. ``SyntheticMDP``'s ``state`` with ``observe_state=True``) as one-hot/flat features.
* :class:`CascadingQNetwork`: ``k`` functions ``Q_j(s, a*_1..a*_{j-1}, a_j) = q_j^T relu(L_j [s; f_{a*_1}; ...;
  f_{a_j}] + c_j)`` (Eq. 9) on the shared state embedding, and the cascade of Algorithm 1 that picks the slate
  position by position, never repeating an entry and never showing one outside the candidate set.
* :class:`AdditiveQNetwork`: ``Q(s, A) = sum_{a in A} Q(s, a)`` (GAN-GDQN, He et al. 2016): the best slate is the
  top-``k`` allowed entries by ``Q(s, a)``.

Both networks evaluate a whole position in one pass: ``L_j [s; f_prefix; f_a] = L_j^s s + L_j^p f_prefix + L_j^a f_a``,
so the state and prefix terms are computed once per observation and the candidate term once per entry; only the
``(B, n, l)`` sum, its ReLU and the product with ``q_j`` grow with ``n`` (:func:`relu_scores`: a few rows at a time in
one cached buffer when no gradient flows on CPU, in row chunks of bounded size otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from recsim_gym.agents.cascading_dqn.clicked import CLICKED_KEY, exclude_ids
from recsim_gym.agents.guards import MISSING_MASK, first_nonfinite
from recsim_gym.agents.top_k import chunk_of
from recsim_gym.user_models.encoders import PositionWeightEncoder
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = [
    "AdditiveQNetwork",
    "AdditiveQPolicy",
    "CascadingQNetwork",
    "CascadingQPolicy",
    "SlateQPolicy",
    "SlateStateEncoder",
    "relu_scores",
    "slate_layout",
]

# Observation entries the encoder interprets itself; every other Discrete/Box/MultiBinary entry becomes a feature.
_KNOWN_KEYS = ("history", "history_mask", "candidate_mask", "candidates", "length", CLICKED_KEY)
# Largest B * n * l float32 block a Q evaluation with gradient (or on an accelerator) materialises at once (~64 MB).
_CHUNK_ELEMENTS = 1 << 24
# Elements of the reused block of rows that relu_scores builds without gradient on CPU (2 MB: stays in cache).
_CACHED_ELEMENTS = 1 << 19


def slate_layout(observation_space: spaces.Dict, action_space: spaces.MultiDiscrete) -> dict[str, Any]:
    """What a slate env's spaces say about its slates: ``n`` entries, ``k`` positions, catalogue size, history size.

    Raises:
        ValueError: spaces that are not a slate env's (``MultiDiscrete([n] * k)`` action, ``Dict`` observation with a
            ``history`` entry of item ids).
    """
    if not isinstance(action_space, spaces.MultiDiscrete) or len(set(action_space.nvec.tolist())) != 1:
        raise ValueError(f"a slate policy needs a MultiDiscrete([n] * k) action space, got {action_space}")
    if not isinstance(observation_space, spaces.Dict) or "history" not in observation_space.spaces:
        raise ValueError("a slate policy needs a Dict observation with a 'history' entry (clicked item ids)")
    n, k = int(action_space.nvec[0]), int(action_space.nvec.shape[0])
    hist = observation_space["history"]
    if "candidates" in observation_space.spaces:
        cands = observation_space["candidates"]
        # Box of ids padded with -1 (GANUser-v0), or MultiDiscrete ids padded with n_items (GANUser-v1).
        multi = isinstance(cands, spaces.MultiDiscrete)
        n_items = int(np.max(cands.nvec)) - 1 if multi else int(np.max(cands.high)) + 1
    else:
        n_items = n
    if isinstance(hist, spaces.MultiDiscrete):  # SyntheticMDP and GANUser-v1: ids in [0, n_items), pad = n_items
        length = int(hist.nvec.shape[0])
    elif isinstance(hist, spaces.Box):  # GANUser: ids in [0, n_items), pad = -1
        length = int(hist.shape[0])
    else:
        raise ValueError(f"observation['history'] must be a Box or MultiDiscrete of item ids, got {hist}")
    extras: dict[str, int] = {}
    for key, space in observation_space.spaces.items():
        if key in _KNOWN_KEYS:
            continue
        if isinstance(space, spaces.Discrete):
            extras[key] = int(space.n)
        elif isinstance(space, (spaces.Box, spaces.MultiBinary)):
            extras[key] = int(np.prod(space.shape))
        else:
            raise ValueError(f"observation[{key!r}]: unsupported space {space}")
    return {"n": n, "k": k, "n_items": n_items, "history_length": length, "extras": extras}


class SlateStateEncoder(nn.Module):
    """Shared state embedding ``s`` and item features ``f_a`` of the Q-networks.

    ``s = [PW(history); one-hot/flat extras]``: ``PW`` is the position-weight embedding of the user model (Eq. 4,
    :class:`~recsim_gym.user_models.encoders.PositionWeightEncoder`: ``n_weights`` weight vectors over the lags of
    the last ``history_length`` clicks, projected to ``state_dim``). ``f_a`` is a learned ``item_dim`` embedding.
    :meth:`load_user_model` copies both from a GAN user model (the paper: "we use the same embedding for the state s
    as in Eq. (4)"); whether that embedding is then trained further is the ``freeze`` argument there.

    Args:
        layout: :func:`slate_layout` of the env's spaces.
        state_dim: width of the PW state embedding (64 = the shipped user models' first layer).
        item_dim: width of the item features ``f_a``.
        n_weights: number of position-weight vectors (``pw_dim`` = 4 in the reference code).
        init_std: std of the random initialisation (used when no user model is loaded).
    """

    def __init__(
        self, layout: dict[str, Any], state_dim: int = 64, item_dim: int = 64, n_weights: int = 4, init_std: float = 0.1
    ) -> None:
        super().__init__()
        self.layout = dict(layout)
        self.n_items = int(layout["n_items"])
        self.pw = PositionWeightEncoder(self.n_items, state_dim, n_weights, int(layout["history_length"]) + 1, init_std)
        with torch.no_grad():
            # The reference init (constant 1e-4 weights) suits a model that is trained for thousands of iterations
            # from a tiny scale; from scratch, unit weights give the state the scale of the item tables.
            self.pw.position_weights.fill_(1.0 / math.sqrt(n_weights))
        self.items = nn.Embedding(self.n_items, item_dim)
        nn.init.normal_(self.items.weight, 0.0, init_std)
        self.extras = dict(layout["extras"])
        self.state_dim = state_dim + sum(self.extras.values())
        self.item_dim = item_dim

    def load_user_model(self, model: GANUserModel, freeze: bool = False) -> None:
        """Copy the PW encoder and the item block of a user model's first layer (``E[a] + b``) into this encoder.

        Raises:
            ValueError: the user model is not a PW model of the same catalogue and widths.
        """
        enc = model.encoder
        if not isinstance(enc, PositionWeightEncoder):
            raise ValueError("only a PW user model's embedding can be shared (the LSTM state is not a PW embedding)")
        if enc.tables.shape != self.pw.tables.shape or enc.position_weights.shape != self.pw.position_weights.shape:
            raise ValueError(
                f"user model embedding {tuple(enc.tables.shape)} does not match the encoder "
                f"{tuple(self.pw.tables.shape)}: set state_dim / n_weights / history_length to the user model's"
            )
        if model.item_embedding.shape != self.items.weight.shape:
            raise ValueError(f"item_dim must be {model.item_embedding.shape[1]} to share the user model's items")
        with torch.no_grad():
            self.pw.tables.copy_(enc.tables)
            self.pw.position_weights.copy_(enc.position_weights)
            self.items.weight.copy_(model.item_embedding + model.first_bias)
        if freeze:
            for p in (self.pw.tables, self.pw.position_weights, self.items.weight):
                p.requires_grad_(False)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """State ``(B, state_dim)``, allowed entries ``(B, n)`` bool or None (every entry; no mask is built, so a
        catalogue of millions costs nothing here), and item ids of the entries ``(B, n)`` or None.

        Item ids are None when the action entries *are* the catalogue ids (no ``candidates`` in the observation).
        """
        hist = obs["history"].long()
        hist = torch.where((hist >= 0) & (hist < self.n_items), hist, -1)  # SyntheticMDP pads with n_items
        parts = [self.pw.encode(hist)]
        for key, size in self.extras.items():
            x = obs[key]
            if x.dim() == 1 or (x.dim() == 2 and x.shape[1] == 1 and size > 1):
                parts.append(nn.functional.one_hot(x.long().view(-1), size).float())
            else:
                parts.append(x.float().reshape(x.shape[0], -1))
        state = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        b = hist.shape[0]
        allowed = obs["candidate_mask"].reshape(b, -1) > 0 if "candidate_mask" in obs else None
        ids = obs["candidates"].long().reshape(b, -1) if "candidates" in obs else None
        return state, allowed, ids

    @staticmethod
    def excluded(obs: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """``(B, w)`` entries that must not be shown besides the mask (the ``clicked`` ids the agent adds on envs
        whose observation has no mask, :mod:`~recsim_gym.agents.cascading_dqn.clicked`), or None."""
        return obs[CLICKED_KEY].long().reshape(obs[CLICKED_KEY].shape[0], -1) if CLICKED_KEY in obs else None

    def features(
        self, ids: torch.Tensor | None, entries: torch.Tensor | None = None, span: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Item features of action entries: all ``(n, d)`` (``entries`` None, catalogue ids) or ``(B, m, d)``.

        Args:
            ids: ``(B, n)`` item id of each entry (candidate mode) or None (entries are item ids).
            entries: ``(B, m)`` entry indices, or None for every entry.
            span: ``(start, stop)``: only entries ``start..stop-1`` (with ``entries`` None): ``(stop - start, d)`` or
                ``(B, stop - start, d)``.
        """
        if span is not None:
            start, stop = span
            return (
                self.items.weight[start:stop]
                if ids is None
                else self.items(ids[:, start:stop].clamp(0, self.n_items - 1))
            )
        if ids is None:
            return self.items.weight if entries is None else self.items(entries)
        chosen = ids if entries is None else ids.gather(1, entries)
        return self.items(chosen.clamp(0, self.n_items - 1))  # pads (-1, or n_items in v1) are never allowed


def relu_scores(pre: torch.Tensor, cand: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q^T relu(pre_b + cand_a)`` for every row ``b`` and action entry ``a``: ``(B, n)``.

    Args:
        pre: ``(B, l)`` state (and prefix) term of each row.
        cand: ``(n, l)`` entry terms shared by all rows, or ``(B, n, l)`` per row (candidate mode).
        q: ``(l,)`` output weights.

    Without gradient on CPU (the cascade at ``s'`` in every training step, and acting) the ``(n, l)`` blocks are
    built a few rows at a time in one reused buffer that stays in cache, then reduced by a matrix-vector product:
    2-4x faster than one ``(B, n, l)`` block, whose add, ReLU and product each stream it through memory
    (BENCHMARKS.md "CDQN training time"). With gradient, or on an accelerator, the block is built in row chunks of
    bounded size.
    """
    b, n, width = pre.shape[0], cand.shape[-2], pre.shape[1]
    if pre.device.type == "cpu" and not torch.is_grad_enabled():
        rows = max(1, min(b, _CACHED_ELEMENTS // max(1, n * width)))
        out = pre.new_empty(b, n)
        buf = pre.new_empty(rows, n, width)
        for i in range(0, b, rows):
            block = buf[: min(rows, b - i)]
            c = cand if cand.dim() == 2 else cand[i : i + rows]
            torch.add(c, pre[i : i + rows].unsqueeze(1), out=block)
            torch.matmul(block.relu_(), q, out=out[i : i + rows])
        return out
    step = max(1, _CHUNK_ELEMENTS // max(1, n * width))
    parts = []
    for i in range(0, b, step):
        c = cand if cand.dim() == 2 else cand[i : i + step]
        parts.append(torch.relu(pre[i : i + step].unsqueeze(1) + c) @ q)
    return torch.cat(parts)


def _forbid(
    scores: torch.Tensor, allowed: torch.Tensor | None, excluded: torch.Tensor | None, start: int
) -> torch.Tensor:
    """``scores`` ``(B, C)`` of entries ``start..start+C-1`` with ``-inf`` where the mask ``allowed`` ``(B, n)`` is
    False and at the ``excluded`` ids ``(B, w)`` (either None: nothing of that kind)."""
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, start : start + scores.shape[1]], float("-inf"))
    if excluded is not None:
        scores = exclude_ids(scores, excluded, start)
    return scores


class _SlateQNetwork(nn.Module):
    """Interface shared by the cascading and the additive Q-networks (see the module docstring).

    The greedy slate is chosen over the action entries ``item_chunk`` at a time (a running argmax per cascade
    position, a running top-``k`` for the additive network), so neither the ``(n, l)`` entry terms nor the ``(B, n)``
    scores of a whole catalogue exist at once; the slate equals the one-block result.
    """

    #: Entries scored per block in :meth:`greedy`; None sizes it (see :meth:`_blocks`).
    item_chunk: int | None = None
    #: Largest projected item table ``(n, l)`` kept between greedy calls without gradient, per position (16 M
    #: elements: 64 MB of float32; a 10^6-item catalogue at ``l = 64`` is above it and is projected at each call).
    projection_cache_elements: int = 1 << 24

    def __init__(
        self,
        layout: dict[str, Any],
        hidden: int = 64,
        state_dim: int = 64,
        item_dim: int = 64,
        n_weights: int = 4,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.k = int(layout["k"])
        self.hidden = int(hidden)
        self.encoder = SlateStateEncoder(layout, state_dim, item_dim, n_weights, init_std)
        self._build_heads(self.hidden)

    def _build_heads(self, hidden: int) -> None:
        """Create the Q-function layers on top of :attr:`encoder` (after it, so parameters initialise in this order)."""
        raise NotImplementedError

    def _entry_terms(self, layer: nn.Linear, ids: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
        """``layer`` applied to the features of entries ``start..stop-1``: ``(C, l)``, or ``(B, C, l)`` with ids.

        Without gradient and over the catalogue (no ``ids``), the projection of the whole item table is kept between
        calls while neither ``layer``'s weights nor the item table change (their tensors' version counters; an
        optimizer step or a target sync bumps them): acting on one state then costs ``n x l`` products, not
        ``n x l x d``. Tables above :attr:`projection_cache_elements` are projected block by block at each call.
        """
        if ids is not None or torch.is_grad_enabled():
            return layer(self.encoder.features(ids, span=(start, stop)))
        items = self.encoder.items.weight
        if items.shape[0] * layer.weight.shape[0] > self.projection_cache_elements:
            return layer(self.encoder.features(None, span=(start, stop)))
        # The cache holds the very tensors it was built from (so none can be freed and its memory reused by another).
        cache: dict[int, tuple[Any, ...]] = self.__dict__.setdefault("_projected", {})
        hit = cache.get(id(layer))
        w = layer.weight
        if hit is None or not (hit[0] is w and hit[1] == w._version and hit[2] is items and hit[3] == items._version):
            hit = (w, w._version, items, items._version, layer(items))
            cache[id(layer)] = hit
        return hit[4][start:stop]

    def _blocks(self, state: torch.Tensor, ids: torch.Tensor | None) -> list[tuple[int, int]]:
        """``(start, stop)`` blocks of action entries scored together.

        Without gradient on the CPU :func:`relu_scores` builds one row's ``(block, l)`` terms at a time, so a block
        of ``_CACHED_ELEMENTS / l`` entries keeps them in cache whatever ``B``; otherwise the ``(B, block, l)`` terms
        exist at once and ``B x block x l`` is bounded.
        """
        n = int(self.encoder.layout["n"]) if ids is None else int(ids.shape[1])
        if self.item_chunk is not None:
            step = self.item_chunk
        elif state.device.type == "cpu" and not torch.is_grad_enabled():
            step = chunk_of(1, self.hidden, n, _CACHED_ELEMENTS)
        else:
            step = chunk_of(state.shape[0], self.hidden, n)
        return [(start, min(n, start + step)) for start in range(0, n, max(1, step))]

    def greedy(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Best slate ``(B, k)`` (action entries) and its value ``Q(s, A*)`` ``(B,)``."""
        raise NotImplementedError

    def predictions(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """``(B, m)`` predictions that all regress on the same target ``y`` for the slates ``actions`` ``(B, k)``."""
        raise NotImplementedError


class CascadingQNetwork(_SlateQNetwork):
    """The ``k`` cascading Q-functions of Chen et al. (2019), Eq. 9, and the cascade of their Algorithm 1.

    ``Q_j(s, a_{1:j}) = q_j^T relu(L_j [s; f_{a_1}; ...; f_{a_j}] + c_j)``, one network per position ``j``, all on
    the shared state embedding of :class:`SlateStateEncoder`. ``relu`` stands for the paper's unspecified ``sigma``.

    Args:
        layout: :func:`slate_layout` of the env's spaces.
        hidden: ``l``, the hidden width of each ``Q_j`` (unspecified in the paper, chosen here).
        state_dim, item_dim, n_weights, init_std: see :class:`SlateStateEncoder`.
    """

    def _build_heads(self, hidden: int) -> None:
        ds, di = self.encoder.state_dim, self.encoder.item_dim
        # L_j = [L_j^s | L_j^p | L_j^a]: state block (with c_j as its bias), prefix block, candidate block.
        self.state_in = nn.ModuleList(nn.Linear(ds, hidden) for _ in range(self.k))
        self.prefix_in = nn.ModuleList(nn.Linear(di * j, hidden, bias=False) for j in range(1, self.k))
        self.item_in = nn.ModuleList(nn.Linear(di, hidden, bias=False) for _ in range(self.k))
        self.out = nn.ModuleList(nn.Linear(hidden, 1, bias=False) for _ in range(self.k))  # q_j (Eq. 9: no bias)

    def _pre(self, j: int, state: torch.Tensor, prefix: list[torch.Tensor]) -> torch.Tensor:
        pre = self.state_in[j](state)
        if j > 0:
            pre = pre + self.prefix_in[j - 1](torch.cat(prefix, dim=1))
        return pre

    def position_scores(
        self, j: int, state: torch.Tensor, prefix: list[torch.Tensor], ids: torch.Tensor | None
    ) -> torch.Tensor:
        """``Q_j(s, a*_{1:j-1}, a)`` for every action entry ``a``: ``(B, n)``.

        Args:
            j: position, 0-based.
            state: ``(B, ds)`` state embeddings.
            prefix: ``j`` tensors ``(B, di)``, the features of the entries already chosen.
            ids: item ids of the entries (candidate mode) or None.
        """
        pre = self._pre(j, state, prefix)  # (B, l)
        cand = self.item_in[j](self.encoder.features(ids))  # (n, l) or (B, n, l)
        return relu_scores(pre, cand, self.out[j].weight.view(-1))

    def greedy(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Algorithm 1: ``a*_j = argmax_{a allowed, not in a*_{1:j-1}} Q_j(s, a*_{1:j-1}, a)`` for ``j = 1..k``.

        Each position is a running argmax over blocks of entries (ties go to the lower entry, as one ``max`` over
        all entries does). Returns the slate ``(B, k)`` and ``Q_k(s, a*_{1:k})`` ``(B,)``.
        """
        state, allowed, ids = self.encoder(obs)
        excluded = self.encoder.excluded(obs)
        b = state.shape[0]
        blocks = self._blocks(state, ids)
        prefix: list[torch.Tensor] = []
        slate: list[torch.Tensor] = []
        value = state.new_zeros(b)
        for j in range(self.k):
            pre, q = self._pre(j, state, prefix), self.out[j].weight.view(-1)
            value = state.new_full((b,), float("-inf"))
            best = torch.zeros(b, dtype=torch.int64, device=state.device)
            for start, stop in blocks:
                cand = self._entry_terms(self.item_in[j], ids, start, stop)  # (C, l) or (B, C, l)
                scores = _forbid(relu_scores(pre, cand, q), allowed, excluded, start)
                if slate:  # never pick an entry twice
                    scores = exclude_ids(scores, torch.stack(slate, dim=1), start)
                v, i = scores.max(dim=1)
                better = v > value  # strict: an equal value in a later block keeps the lower entry
                value = torch.where(better, v, value)
                best = torch.where(better, i + start, best)
            slate.append(best)
            prefix.append(self.encoder.features(ids, best.unsqueeze(1)).reshape(b, -1))
        return torch.stack(slate, dim=1), value

    def cascade_values(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """``Q_j(s, a_{1:j})`` of the slates ``actions`` ``(B, k)`` for every position: ``(B, k)``."""
        state, _, ids = self.encoder(obs)
        feats = self.encoder.features(ids, actions.long())  # (B, k, di)
        out = []
        for j in range(self.k):
            prefix = [feats[:, i] for i in range(j)]
            h = torch.relu(self._pre(j, state, prefix) + self.item_in[j](feats[:, j]))
            out.append(self.out[j](h).squeeze(1))
        return torch.stack(out, dim=1)

    def predictions(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """Every ``Q_j(s, a_{1:j})``: all ``k`` regress on the same target (Eq. 11)."""
        return self.cascade_values(obs, actions)


class AdditiveQNetwork(_SlateQNetwork):
    """``Q(s, A) = sum_{a in A} Q(s, a)``, ``Q(s, a) = q^T relu(L [s; f_a] + c)`` (GAN-GDQN; He et al. 2016).

    Args: as :class:`CascadingQNetwork`.
    """

    def _build_heads(self, hidden: int) -> None:
        self.state_in = nn.Linear(self.encoder.state_dim, hidden)
        self.item_in = nn.Linear(self.encoder.item_dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1, bias=False)

    def item_scores(self, state: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        """``Q(s, a)`` for every action entry: ``(B, n)``."""
        pre = self.state_in(state)
        cand = self.item_in(self.encoder.features(ids))
        return relu_scores(pre, cand, self.out.weight.view(-1))

    def greedy(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` allowed entries by ``Q(s, a)`` (best first) and the sum of their values: a running top-``k``
        over blocks of entries."""
        state, allowed, ids = self.encoder(obs)
        excluded = self.encoder.excluded(obs)
        pre, q = self.state_in(state), self.out.weight.view(-1)
        top: torch.Tensor | None = None
        slate: torch.Tensor | None = None
        for start, stop in self._blocks(state, ids):
            scores = _forbid(
                relu_scores(pre, self._entry_terms(self.item_in, ids, start, stop), q), allowed, excluded, start
            )
            v, i = scores.topk(min(self.k, stop - start), dim=1)
            if top is None or slate is None:
                top, slate = v, i + start
                continue
            v, i = torch.cat([top, v], dim=1), torch.cat([slate, i + start], dim=1)
            top, pos = v.topk(self.k, dim=1)
            slate = i.gather(1, pos)
        assert top is not None and slate is not None
        return slate, top.sum(dim=1)

    def predictions(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """``Q(s, A) = sum_j Q(s, a_j)``: ``(B, 1)``."""
        state, _, ids = self.encoder(obs)
        feats = self.encoder.features(ids, actions.long())  # (B, k, di)
        h = torch.relu(self.state_in(state).unsqueeze(1) + self.item_in(feats))
        return self.out(h).squeeze(2).sum(dim=1, keepdim=True)


class SlateQPolicy(BasePolicy):
    """SB3 policy around a slate Q-network and its target copy; ``predict`` returns the greedy slate.

    Observations are used raw (SB3's ``obs_to_tensor`` keeps their dtypes, so item ids stay integers); SB3's feature
    extractors and observation preprocessing are not used.

    Args:
        observation_space: the env's ``Dict`` observation space.
        action_space: the env's ``MultiDiscrete([n] * k)`` action space.
        lr_schedule: learning-rate schedule (SB3 passes it).
        hidden: ``l``, the hidden width of each Q-function.
        state_dim: width of the PW state embedding.
        item_dim: width of the item features.
        n_weights: number of position-weight vectors.
        init_std: std of the random initialisation of the embeddings.
        optimizer_class: torch optimizer (Adam; the paper does not say).
        optimizer_kwargs: extra optimizer arguments.
    """

    network_class: type[_SlateQNetwork] = CascadingQNetwork

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiDiscrete,
        lr_schedule: Schedule,
        hidden: int = 64,
        state_dim: int = 64,
        item_dim: int = 64,
        n_weights: int = 4,
        init_std: float = 0.1,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
        )
        self.layout = slate_layout(observation_space, action_space)
        self.net_kwargs = {
            "hidden": hidden,
            "state_dim": state_dim,
            "item_dim": item_dim,
            "n_weights": n_weights,
            "init_std": init_std,
        }
        self.q_net = self.network_class(self.layout, **self.net_kwargs)
        self.q_net_target = self.network_class(self.layout, **self.net_kwargs)
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.requires_grad_(False)
        self.q_net_target.train(False)
        self.refresh_optimizer(lr_schedule(1))

    def sync_target(self) -> None:
        """Copy the online network into the target network, frozen parameters included."""
        self.q_net_target.load_state_dict(self.q_net.state_dict())

    def refresh_optimizer(self, lr: float) -> None:
        """Rebuild the optimizer after parameters were frozen or unfrozen."""
        self.optimizer = self.optimizer_class(
            [p for p in self.q_net.parameters() if p.requires_grad], lr=lr, **self.optimizer_kwargs
        )

    def forward(self, obs: dict[str, torch.Tensor], deterministic: bool = True) -> torch.Tensor:
        """The greedy slate ``(B, k)``."""
        return self._predict(obs, deterministic)

    def _predict(self, observation: Any, deterministic: bool = True) -> torch.Tensor:
        """The greedy slate; refuses observations without their candidate mask and a network with non-finite weights.

        Raises:
            ValueError: ``candidate_mask`` is in the observation space but not in ``observation``, or a weight of the
                Q-network is NaN or infinite (its slates would be arbitrary: the lowest entries, in practice).
        """
        if "candidate_mask" in getattr(self.observation_space, "spaces", {}) and "candidate_mask" not in observation:
            raise ValueError(MISSING_MASK)
        bad = first_nonfinite(self.q_net)
        if bad is not None:
            raise ValueError(
                f"the Q-network's weights hold NaN or infinite values (first in {bad}); refusing to act, since its "
                "slates would be arbitrary (training diverged, or the weights were damaged)"
            )
        with torch.no_grad():
            return self.q_net.greedy(observation)[0]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.net_kwargs)
        data.update(
            lr_schedule=self._dummy_schedule,  # type: ignore[attr-defined]
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        """Put the online network in train or eval mode (the target stays in eval mode)."""
        self.q_net.train(mode)
        self.training = mode


class CascadingQPolicy(SlateQPolicy):
    """:class:`SlateQPolicy` with the cascading Q-network (``CascadingDQN``'s ``"MultiInputPolicy"``)."""

    network_class = CascadingQNetwork


class AdditiveQPolicy(SlateQPolicy):
    """:class:`SlateQPolicy` with the additive Q-network (``AdditiveDQN``'s ``"MultiInputPolicy"``)."""

    network_class = AdditiveQNetwork
