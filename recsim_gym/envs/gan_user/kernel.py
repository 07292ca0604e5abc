"""The GANUser simulation kernel: B users of a GAN user model as arrays, written once for numpy and torch.

:class:`UserKernel` holds the state of B simulated users (click histories, the ids of the items each user clicked
in the episode, candidate lists, state embeddings, random-stream keys and step counters) and implements everything
a user does: the burn-in of a reset, the candidate draws, the validation and repair of the shown slate, the choice
among the slate's items, the reward and the update of the state. :class:`~recsim_gym.envs.gan_user.env.GANUserEnv`
runs it with B = 1, :class:`~recsim_gym.envs.gan_user.vector_env.GANUserVectorEnv` with B = ``num_envs``.

Why one implementation over two array libraries (numpy for the single env, torch for the batched one) rather than
torch only: a step of one user is ~40 tiny array operations, which numpy runs in about a microsecond each and torch
in several (its dispatcher, not the arithmetic, dominates at B = 1), while the batched env needs torch for CUDA and
for its ``embedding_bag``/MLP forward over ``B * k`` items. The operations the two libraries spell differently are
a handful of one-line adapters (:mod:`recsim_gym.envs.gan_user.arrays`); the model evaluation has one numpy and one
torch path (:mod:`recsim_gym.envs.gan_user.evaluators`), which agree to float32 rounding. A single env with an LSTM
model runs this kernel in torch (B = 1): its state is a torch LSTM cell.

Random numbers come from counter-based streams (:mod:`recsim_gym.envs.random_streams`) keyed on each user's episode
key, so user ``i`` of a kernel equals a one-user kernel with the same key, whatever the other users do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsim_gym.envs import random_streams as rs
from recsim_gym.envs.gan_user.arrays import NumpyOps, TorchOps
from recsim_gym.envs.gan_user.evaluators import TorchModel, numpy_pw
from recsim_gym.envs.gan_user.one_user import OneUser, entropy_probs
from recsim_gym.envs.gan_user.sampling import (
    allowed_mask,
    choose,
    clear_clicked,
    clicked_among,
    first_occurrence,
    insert_clicked,
    n_draws,
    repair_row,
    repair_rows,
    sample_distinct,
    unclicked_at,
    unclicked_int8,
)
from recsim_gym.user_models.adversarial import AdversarialUserModel
from recsim_gym.user_models.gan_user_model import GANUserModel

__all__ = ["UserKernel", "choice_probs"]

Array = Any  # numpy array or torch tensor, per the kernel's backend


def choice_probs(ops: Any, util: Array) -> Array:
    """``(B, k + 1)`` float32 choice probabilities (last = no click, utility 0), as ``GANUserModel.choice_log_probs``.

    Written out (max-shifted exponentials) rather than through a library softmax, so numpy and torch perform the
    same float32 operations; a softmax on ``(B, 6)`` also costs more.
    """
    if not ops.is_torch and util.shape[0] == 1:
        return _choice_probs_one(util)
    m = ops.clip_min(ops.amax(util), 0.0)
    e = ops.xp.exp(util - m)
    e0 = ops.xp.exp(-m)
    return ops.cat([e, e0]) / (e.sum(1)[:, None] + e0)


def _choice_probs_one(util: np.ndarray) -> np.ndarray:
    """:func:`choice_probs` of one user ``(1, k)`` in numpy: :func:`~.one_user.entropy_probs` of its row."""
    return entropy_probs(util[0])[None, :]


def _with_rows(ops: Any, dst: Array, rows: Array, block: Array) -> Array:
    """``dst`` with its rows ``rows`` replaced by ``block``: in place in numpy; in torch a new array gathered from
    ``dst`` and ``block`` (torch writes an indexed ``(R, n)`` int8 block element by element: 0.43 ms for 1,024 x 804,
    against 0.18 ms for this gather of whole rows; docs/lab_notes/batched_micro.py)."""
    if not ops.is_torch:
        dst[rows] = block
        return dst
    import torch

    src = torch.arange(dst.shape[0], device=dst.device)
    src[rows] = torch.arange(dst.shape[0], dst.shape[0] + block.shape[0], device=dst.device)
    return torch.cat([dst, block]).index_select(0, src)


class UserKernel:
    """State and dynamics of ``num_users`` simulated users (see the module docstring).

    Args:
        ops: :class:`~recsim_gym.envs.gan_user.arrays.NumpyOps` (PW models only) or ``TorchOps(device)``.
        model: the reward network ``r(s, a)``.
        behaviour: a min-max model's learned behaviour network ``phi`` (PW), or None.
        minmax: the min-max model (its ``eta`` and regulariser), or None for an entropy model.
        reward: ``"click"`` or ``"expected"``.
        The other arguments are those of the envs, already checked.
    """

    def __init__(
        self,
        ops: NumpyOps | TorchOps,
        model: GANUserModel,
        behaviour: GANUserModel | None,
        minmax: AdversarialUserModel | None,
        *,
        num_users: int,
        slate_size: int,
        horizon: int,
        burn_in: int,
        num_candidates: int | None,
        history_length: int,
        reward: str,
    ) -> None:
        self.ops = ops
        if ops.is_torch:
            self.m: Any = TorchModel(model, ops.device)  # type: ignore[union-attr]
            self.phi: Any = TorchModel(behaviour, ops.device) if behaviour is not None else None  # type: ignore[union-attr]
        else:
            self.m = numpy_pw(model)
            self.phi = numpy_pw(behaviour) if behaviour is not None else None
        self.minmax = minmax
        self.exact = minmax.regularizer if minmax is not None and behaviour is None else None
        self.n_items = int(model.n_items)
        self.slate_size, self.horizon, self.burn_in = slate_size, horizon, burn_in
        self.num_candidates, self.history_length, self.reward = num_candidates, history_length, reward
        # Pads (-1) only reach the utilities of the batched env's candidate mode; the numpy path never sees one.
        self.pads = ops.is_torch and num_candidates is not None
        window = model.config.pw_band - 1 if model.config.encoder == "pw" else 0
        self.burn_draws = n_draws(slate_size, self.n_items)
        self.cand_draws = None if num_candidates is None else n_draws(num_candidates, self.n_items)
        b, i64 = num_users, ops.int64
        self.num_users = b
        self.base = ops.full((b,), 0, i64)
        self.episode = ops.full((b,), 0, i64)
        self.keys = ops.full((b,), 0, i64)
        self.t = ops.full((b,), 0, i64)
        self.hist = ops.full((b, max(history_length, window)), -1, i64)
        # The items clicked in the episode as ids, sorted per user and padded with n_items, not as an n-wide mask:
        # neither the state nor a step's cost grows with the catalogue, and "already clicked?" is a binary search.
        # An episode holds at most burn_in + horizon clicks (or the reset history's length + horizon: begin()
        # widens the array then); the extra last column is always a pad (see sampling.insert_clicked).
        self.clicked_ids = ops.full((b, burn_in + horizon + 1), self.n_items, i64)
        self.n_clicked = ops.full((b,), 0, i64)
        # The same clicked items as an (B, n) int8 mask (1 = not clicked), kept only once a v0 observation asks for
        # its candidate_mask, which is this mask: the observation is then a copy, and "already clicked?" (the slate
        # check of every step, the burn-in's draws) a gather. The -v1 envs never build it.
        self.unclicked: Array | None = None
        self.cands = ops.full((b, num_candidates or 0), -1, i64)
        self.lstm: tuple[Any, ...] | None = None
        if self.m.model is not None:
            self.lstm = self.m.model.encoder.initial_state(b, ops.device)  # type: ignore[union-attr]
        self.z = ops.full((b, self.m.hidden), 0.0, ops.float32)
        # The single env's fused path (a PW model in numpy): step, burn-in and observation of the one user.
        self.one = OneUser(self) if not ops.is_torch and b == 1 else None

    def arrays(self) -> list[Array]:
        """The persistent per-user state arrays."""
        state = [self.base, self.episode, self.keys, self.t, self.hist, self.clicked_ids, self.n_clicked, self.cands]
        mask = [] if self.unclicked is None else [self.unclicked]
        return state + mask + [self.z] + list(self.lstm or ())

    def allowed(self, rows: Array | None = None) -> Array:
        """``(R, n)`` bool: the action entries each user (or each of ``rows``) may show now (unclicked items, or real
        candidates). Catalogue-wide without ``num_candidates``: built on demand, never kept."""
        if self.num_candidates is not None:
            return (self.cands if rows is None else self.cands[rows]) >= 0
        if not self.ops.is_torch and self.num_users == 1:
            mask = np.ones((1, self.n_items), dtype=bool)  # one user: her count bounds the ids to clear
            mask[0, self.clicked_ids[0, : int(self.n_clicked[0])]] = False
            return mask  # (1, n) and C-contiguous, like the observation arrays
        if self.unclicked is not None:
            return (self.unclicked if rows is None else self.unclicked[rows]) > 0
        return allowed_mask(self.ops, self.clicked_ids if rows is None else self.clicked_ids[rows], self.n_items)

    def _widen(self, clicks: int) -> None:
        """Make room for ``clicks`` clicks per episode (a reset history longer than the burn-in)."""
        have = self.clicked_ids.shape[1] - 1
        if clicks > have:
            wider = self.ops.full((self.num_users, clicks + 1), self.n_items, self.ops.int64)
            wider[:, : have + 1] = self.clicked_ids
            self.clicked_ids = wider

    # ----- state ---------------------------------------------------------------------------------------------

    def _after_clicks(self, click: Array, hist: Array, ids: Array, lstm: Any) -> tuple[Array, Array, Array, Any, Array]:
        """``(clicked, hist, ids, lstm, z)``: new arrays of a block of users after each clicks ``click`` (-1 = none)."""
        ops = self.ops
        clicked = click >= 0
        col = clicked[:, None]
        shifted = ops.cat([click[:, None], hist[:, :-1]])
        # numpy only gets here when some user clicked, and its one user (B = 1) then needs no select.
        hist = shifted if not ops.is_torch and clicked.all() else ops.xp.where(col, shifted, hist)
        ids = insert_clicked(ops, ids, click, self.n_items)
        if lstm is not None:
            lstm = self.m.model.encoder.advance(lstm, click, clicked)
        return clicked, hist, ids, lstm, self.m.z(hist, lstm)

    def push(self, click: Array) -> None:
        """Append ``click`` (-1 = none) to the histories of all users and refresh their ``z``."""
        if self.one is not None:  # the one numpy user: OneUser.push (a no-click changes nothing)
            if int(click[0]) >= 0:
                self.one.push(int(click[0]))
            return
        if not self.ops.is_torch and not (click >= 0).any():
            return  # nothing moves (the torch path does not pay a device sync to know it)
        clicked, self.hist, self.clicked_ids, self.lstm, self.z = self._after_clicks(
            click, self.hist, self.clicked_ids, self.lstm
        )
        self.n_clicked += clicked
        if self.unclicked is not None:
            clear_clicked(self.ops, self.unclicked, click)

    def begin(self, rows: Array, histories: list[np.ndarray] | None) -> None:
        """Episode ``self.episode[rows]`` of users ``rows``: its key, an empty state, then the histories (most
        recent first, one per row) or a burn-in, and the first candidates.

        The histories and the burn-in run on a block of new arrays holding only these users (not on index gathers
        and scatters of the kernel's arrays at every simulated step), written back once at the end. The block's
        users are ordered by burn-in length, longest first, so the users still in their burn-in at a step are a
        prefix of it, whose arrays are views.
        """
        ops = self.ops
        if histories is None and self.one is not None and self.one.fast_burn:
            self.one.begin()  # the one numpy user's reset and burn-in on scalars (same draws, same floats)
            self.sample_candidates(rows)
            return
        self.keys[rows] = rs.episode_key(self.base[rows], self.episode[rows])
        self.t[rows] = 0
        if histories is not None:
            self._widen(max((h.size for h in histories), default=0) + self.horizon)
        r, n, i64 = len(rows), self.n_items, ops.int64
        hist = ops.full((r, self.hist.shape[1]), -1, i64)
        ids = ops.full((r, self.clicked_ids.shape[1]), n, i64)
        count = ops.full((r,), 0, i64)
        mask = None if self.unclicked is None else ops.full((r, n), 1, self.unclicked.dtype)
        lstm = None if self.lstm is None else tuple(ops.full((r, *s.shape[1:]), 0.0, s.dtype) for s in self.lstm)
        z = self.m.z(hist, lstm)

        def advance(c: int, click: Array) -> None:
            """The first ``c`` users of the block click ``click``."""
            live = None if lstm is None else tuple(s[:c] for s in lstm)
            clicked, hist[:c], ids[:c], live, z[:c] = self._after_clicks(click, hist[:c], ids[:c], live)
            count[:c] += clicked
            if mask is not None:
                clear_clicked(ops, mask[:c], click)
            for s, v in zip(lstm or (), live or (), strict=True):
                s[:c] = v

        if histories is not None:
            for step in range(max((h.size for h in histories), default=0)):  # oldest click first
                advance(r, ops.tensor([int(h[h.size - 1 - step]) if step < h.size else -1 for h in histories]))
        elif r:
            keys = self.keys[rows]
            steps = rs.below(ops.draws(keys, rs.BURN_LEN, 0, 1)[:, 0], self.burn_in + 1)
            order = ops.sort(-steps[None, :])[1][0]  # longest burn-in first (stable: ties keep their order)
            rows, keys, steps = rows[order], keys[order], steps[order]
            # Users still in their burn-in at each step (half of them on average): one host read for all steps.
            live_counts = ops.host((steps[None, :] > ops.arange(self.burn_in)[:, None]).sum(1)).tolist()
            for s, c in enumerate(c for c in live_counts if c > 0):
                raw = ops.draws(keys[:c], rs.BURN_SLATE, s, self.burn_draws)
                slate = sample_distinct(ops, raw, ids[:c], n, self.slate_size, None, None if mask is None else mask[:c])
                u = ops.uniforms(keys[:c], rs.BURN_CLICK, s)
                advance(c, self.choose(z[:c], slate, u, hist[:c])[1])
        self.hist[rows], self.clicked_ids[rows], self.n_clicked[rows], self.z[rows] = hist, ids, count, z
        if mask is not None:
            self.unclicked = _with_rows(ops, self.unclicked, rows, mask)
        for s, v in zip(self.lstm or (), lstm or (), strict=True):
            s[rows] = v
        if self.one is not None:
            self.one.sync()
        self.sample_candidates(rows)

    def sample_candidates(self, rows: Array | None = None) -> None:
        """Draw the candidate lists of all users (or of ``rows``) at their current step (``num_candidates`` only)."""
        if self.num_candidates is None:
            return
        keys = self.keys if rows is None else self.keys[rows]
        t = self.t if rows is None else self.t[rows]
        raw = self.ops.draws(keys, rs.CANDIDATES, t, self.cand_draws)
        cands = sample_distinct(self.ops, raw, self.clicked_ids, self.n_items, self.num_candidates, rows)
        if rows is None:
            self.cands = cands
        else:
            self.cands[rows] = cands

    def observe(self, rows: Array | None = None, catalogue_mask: bool = True) -> dict[str, Array]:
        """New arrays holding the (v0) observation of every user (or of ``rows``).

        ``catalogue_mask=False`` leaves out the ``(R, n)`` ``candidate_mask`` of the whole-catalogue mode (the -v1
        observation has none), so nothing catalogue-wide is built.
        """
        ops, m = self.ops, self.history_length
        hist = ops.copy(self.hist[:, :m]) if rows is None else self.hist[rows, :m]
        obs = {"history": hist, "history_mask": (hist >= 0).view(ops.xp.int8)}
        if self.num_candidates is None:
            if catalogue_mask:
                if self.unclicked is None:
                    self.unclicked = unclicked_int8(ops, self.clicked_ids, self.n_items)
                obs["candidate_mask"] = ops.copy(self.unclicked) if rows is None else self.unclicked[rows]
        else:
            cands = ops.copy(self.cands) if rows is None else self.cands[rows]
            obs["candidates"] = cands
            obs["candidate_mask"] = (cands >= 0).view(ops.xp.int8)
        return obs

    # ----- one step ------------------------------------------------------------------------------------------

    def choose(self, z: Array, items: Array, u: Array, hist: Array) -> tuple[Array, Array, Array, Array]:
        """Click position ``(B,)`` (k = none), clicked item (-1), reward and choice probabilities ``(B, k + 1)``.

        ``hist`` (the same rows' histories) feeds the behaviour model of a min-max user. The reward is the click's
        ``r(s, a)``, or with ``reward="expected"`` its expectation over the choice, in the state the slate is shown.
        """
        ops = self.ops
        util = self.m.utilities(z, items, self.pads)
        probs = self._probs(util, items, hist)
        pos = choose(probs, u)
        click = ops.pick_hit(items, pos, -1)
        if self.reward == "expected":
            reward = self.m.expected_reward(probs, util)
        else:
            reward = ops.pick_hit(util, pos, 0.0)
        return pos, click, reward, probs

    def _probs(self, util: Array, items: Array, hist: Array) -> Array:
        """``(B, k + 1)`` choice probabilities of the users shown ``items`` with utilities ``util``."""
        if self.minmax is None:
            return choice_probs(self.ops, util)
        if self.phi is not None:
            return self.phi.behaviour_probs(self.phi.utilities(self.phi.z(hist), items, self.pads), None, 1.0)
        return self.m.behaviour_probs(util, self.exact, self.minmax.eta)

    def step_one(self, act: np.ndarray, strict: bool) -> tuple[np.ndarray, np.ndarray, bool, int, int, float, Array]:
        """:meth:`step` of a one-user kernel (the single env) for its validated action ``(k,)``, as host values.

        Returns ``(items, shown, repaired, pos, click, reward, probs)``: the item ids shown and the repaired action
        (new ``(k,)`` arrays; the same array when nothing maps positions to items), the click position and item
        (-1 without a click), the reward and the choice probabilities ``(k + 1,)``.

        numpy (a PW model): :meth:`OneUser.step`, the operations of :meth:`step` on ``(k,)`` rows, buffers and
        Python scalars, without its ``(B,)`` arrays, masks and selects: the same floats bit for bit, at a fraction
        of the cost (the single env's hot path). torch (an LSTM model's single env): :meth:`step` itself.
        """
        k = self.slate_size
        if self.ops.is_torch:
            out = self.step(self.ops.tensor(act)[None, :], None, strict, label=False)
            host, pos = self.ops.host, int(out["pos"][0])
            items, shown, probs = (host(out[key])[0] for key in ("items", "shown", "probs"))
            hit = pos < k
            return (
                items.copy(),
                shown.copy(),
                bool(out["repaired"][0]),
                pos if hit else -1,
                int(out["click"][0]),
                float(out["reward"][0]),
                probs,
            )
        return self.one.step(act, strict)  # type: ignore[union-attr]

    def observe_one(self, catalogue_mask: bool = True) -> dict[str, np.ndarray]:
        """:meth:`observe` of a one-user kernel as ``(m,)``-style host arrays (new arrays, no state aliased)."""
        if self.ops.is_torch:
            return {key: self.ops.host(value)[0] for key, value in self.observe(None, catalogue_mask).items()}
        return self.one.observe(catalogue_mask)  # type: ignore[union-attr]

    def repair(self, act: Array, active: Array | None, strict: bool, label: bool) -> tuple[Array, Array]:
        """``(shown, repaired)``: the actions with every active row that repeats an entry or shows a non-candidate
        repaired (:func:`~recsim_gym.envs.gan_user.sampling.repair_row`); ``strict`` raises instead, naming the
        slot when ``label``."""
        ops = self.ops
        if not ops.is_torch:  # one user (B = 1): the rule itself, cheaper than its vectorised check
            if act.shape[0] == 1 and self.num_candidates is None:
                # The common case, decided on the k shown entries (no negation of the (1, n) mask): distinct ids,
                # none clicked yet, is what repair_row keeps as it is.
                acts = set(act[0].tolist())
                clicked = self.clicked_ids[0, : int(self.n_clicked[0])].tolist()
                if len(acts) == act.shape[1] and acts.isdisjoint(clicked):
                    return act.copy(), np.zeros(1, dtype=bool)
            allowed = self.allowed()
            shown, repaired = np.empty_like(act), np.zeros(act.shape[0], dtype=bool)
            for r in range(act.shape[0]):
                shown[r], repaired[r] = repair_row(act[r], allowed[r], strict)
            return shown, repaired
        # The entries each row keeps: allowed (unclicked, or a real candidate) and not a repeat of an earlier one.
        if self.num_candidates is not None:
            allowed = ops.gather(self.cands, act) >= 0
        elif self.unclicked is not None:
            allowed = unclicked_at(ops, self.unclicked, act)
        else:
            allowed = ~clicked_among(ops, act, self.clicked_ids)
        kept = allowed & first_occurrence(ops, act)
        bad = ~kept.all(1)
        if active is not None:
            bad &= active
        if not bool(bad.any()):
            return act, bad
        rows = ops.nonzero(bad)
        if strict:
            row = int(rows[0])
            try:
                repair_row(ops.host(act[row]), ops.host(self.allowed(rows[:1])[0]), strict=True)
            except ValueError as err:
                raise ValueError(f"slot {row}: {err}" if label else str(err)) from None
        act = ops.copy(act)
        if self.num_candidates is None:
            # The fills are the smallest unclicked ids not kept on the slate: at most L clicked and k kept ids lie
            # below them, so a mask of the first L + 2k ids holds all k of them; no (R, n_items) mask is built.
            width = min(self.n_items, self.clicked_ids.shape[1] + 2 * act.shape[1])
            if self.unclicked is not None:
                prefix = self.unclicked[rows, :width] > 0
            else:
                prefix = allowed_mask(ops, self.clicked_ids[rows].clamp(max=width), width)
        else:
            prefix = self.allowed(rows)
        act[rows] = repair_rows(ops, act[rows], prefix, kept[rows])
        return act, bad

    def step(self, act: Array, active: Array | None, strict: bool, label: bool) -> dict[str, Array]:
        """Show the slates ``act`` (``(B, k)`` action entries) to the ``active`` users (None = all): their choices,
        rewards and next states. The inactive users (restarting in this step) click nothing and get 0.

        Returns:
            ``shown`` (repaired actions), ``items`` (item ids shown), ``repaired``, ``pos`` (k = none), ``click``
            (-1 = none), ``reward`` and ``probs`` ``(B, k + 1)``.
        """
        ops = self.ops
        shown, repaired = self.repair(act, active, strict, label)
        items = shown if self.num_candidates is None else ops.gather(self.cands, shown)
        u = ops.uniforms(self.keys, rs.CLICK, self.t)
        pos, click, reward, probs = self.choose(self.z, items, u, self.hist)
        if active is not None:
            click = ops.xp.where(active, click, -1)
            reward = ops.xp.where(active, reward, 0.0)
            self.push(click)
            self.t += active
        else:
            self.push(click)
            self.t += 1
        self.sample_candidates()
        return {"shown": shown, "items": items, "repaired": repaired, "pos": pos, "click": click, "reward": reward,
                "probs": probs}  # fmt: skip

    def item_rewards(self, rows: slice = slice(None)) -> Array:
        """``(R, n_items)`` learned reward of every item for the users of ``rows`` in their current state."""
        z = self.z[rows]
        if self.ops.is_torch:
            items = self.ops.arange(self.n_items).expand(z.shape[0], -1)
        else:
            items = np.broadcast_to(np.arange(self.n_items), (z.shape[0], self.n_items))
        return self.m.utilities(z, items, False)
