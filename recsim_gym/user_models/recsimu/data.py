"""Adapting the Chen et al. display logs to RecSimu's (item, feedback) steps.

RecSimu (Zhao et al., "Toward Simulating Environments in Reinforcement Learning Based Recommendations", AAAI 2020)
models a user as a sequence of browsed items, each with a feedback class. The public files hold display sets (the
items of one page, one of them clicked), so each user's display sets become consecutive steps: every shown item is a
step, the clicked item with feedback *positive* and the other shown items *negative*.

Order. In the raw files the clicked row is the last row of every display set (docs/data.md#pitfalls), so the row
order must never reach a model. :func:`~recsim_gym.data.logs.load_logs` already sorts every display set by item id;
here the items of each display set are then put in a random order drawn from ``numpy.random.default_rng(seed)``,
one permutation per display set in the log's canonical (user, time) order. The steps therefore depend only on the
*content* of the log and the seed: re-ordering the rows inside display sets changes nothing (a test checks it).

Feedback classes. Class ``0`` is positive (a click) and class ``1`` negative (K = 2); with K > 2 classes are ordered
from the most positive. The discriminator's logits follow the same order, ``[real-pos, real-neg, fake-pos, fake-neg]``.

Display sets as units. Every step is an example ``(s, a, r)``: ``a`` the step's item, ``r`` its feedback class, and
the state ``s`` the last ``N`` steps of the user's *earlier* display sets (oldest first, left-padded with ``PAD``):
the items shown on the same page are never part of each other's state. Otherwise the one-click-per-page structure
leaks the label: the last item of a page whose other items were all skipped is the click, and the paper's protocol
(the last step of every sequence is the test example) picks exactly such items (a test AUC of 0.96 on Yelp,
measured with step-by-step states). The items of one page share a state, as in an environment that shows ``k`` items per
step. A user's first page has an empty state (the GRU then starts from its zero state).

Splits (:func:`split_examples`):

* ``"last"`` (the paper's protocol): the last step of every user is the test set (a random item of the user's last
  page, since the items of a page are shuffled); of the remaining steps, the last one of a seeded random
  ``val_fraction`` of the users is the validation set; the rest train.
* ``"users"`` (the file's own split): steps of the train / val / test users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsim_gym.data.logs import PAD, LogData

POSITIVE, NEGATIVE = 0, 1
PROTOCOLS = ("last", "users")


@dataclass
class StepLog:
    """Every user's steps, users contiguous and in id order, steps in time order.

    Attributes:
        user: ``(S,)`` user id of each step.
        item: ``(S,)`` item id.
        feedback: ``(S,)`` feedback class (0 positive, 1 negative).
        start: ``(S,)`` index of the user's first step (so ``j = i - start[i]`` is the step's rank within its user).
        end: ``(S,)`` one past the user's last step.
        page: ``(S,)`` index of the first step of the step's display set (its state ends just before it).
        page_rank: ``(S,)`` rank of the step's display set within its user, counted from the last (0 = last).
        n_items: catalogue size.
        user_split: ``(n_users,)`` the file's split tag of each user (0 train, 1 val, 2 test).
        seed: seed of the within-display-set shuffle.
    """

    user: np.ndarray
    item: np.ndarray
    feedback: np.ndarray
    start: np.ndarray
    end: np.ndarray
    page: np.ndarray
    page_rank: np.ndarray
    n_items: int
    user_split: np.ndarray
    seed: int

    @property
    def n_steps(self) -> int:
        """Number of steps."""
        return int(self.user.shape[0])

    def sequence_lengths(self) -> np.ndarray:
        """Number of steps of each user present in the log."""
        first = self.start == np.arange(self.n_steps)
        return (self.end - self.start)[first]


def steps_from_logs(data: LogData, seed: int = 0) -> StepLog:
    """Flatten every display set of ``data`` into (item, feedback) steps (see the module docstring)."""
    rng = np.random.default_rng(seed)
    users, items, fbs, pages = [], [], [], []
    offset = 0
    for e in range(data.n_events):
        k = int(data.display_len[e])
        shown = data.display[e, :k][rng.permutation(k)]
        pages.append(np.full(k, offset, dtype=np.int64))
        offset += k
        users.append(np.full(k, data.event_user[e], dtype=np.int64))
        items.append(shown.astype(np.int64))
        fbs.append(np.where(shown == data.click[e], POSITIVE, NEGATIVE).astype(np.int64))
    user = np.concatenate(users) if users else np.zeros(0, np.int64)
    item = np.concatenate(items) if items else np.zeros(0, np.int64)
    feedback = np.concatenate(fbs) if fbs else np.zeros(0, np.int64)
    new_user = np.r_[True, user[1:] != user[:-1]] if user.size else np.zeros(0, bool)
    firsts = np.flatnonzero(new_user)
    lasts = np.r_[firsts[1:], user.size]
    counts = lasts - firsts
    start = np.repeat(firsts, counts)
    end = np.repeat(lasts, counts)
    page = np.concatenate(pages) if pages else np.zeros(0, np.int64)
    # Rank of each page from the user's last one: pages per user counted backwards.
    new_page = np.r_[True, page[1:] != page[:-1]] if page.size else np.zeros(0, bool)
    page_no = np.cumsum(new_page) - 1  # global page counter
    last_page_of_user = page_no[np.maximum(end - 1, 0)] if page.size else page_no
    page_rank = last_page_of_user - page_no
    return StepLog(user, item, feedback, start, end, page, page_rank, data.n_items, data.user_split.copy(), seed)


def choose_history_len(steps: StepLog, quantile: float = 0.95, cap: int = 20) -> int:
    """N from the data: the ``quantile`` over users of the state length of their last page (the longest state), capped.

    The paper uses N = 20 on long sessions; the public files hold a few display sets per user, so most states are
    shorter than that and a larger N only adds padding.
    """
    last = steps.page_rank == 0
    lengths = (steps.page - steps.start)[last]
    n = int(np.ceil(np.quantile(lengths, quantile))) if lengths.size else 1
    return int(min(cap, max(1, n)))


@dataclass
class Examples:
    """``(s, a, r)`` examples: states left-padded with ``PAD`` (items) and 0 (feedback), most recent step last.

    Attributes:
        hist_item: ``(M, N)`` item ids of the state, ``PAD`` where empty.
        hist_fb: ``(M, N)`` feedback classes of the state (0 where empty; masked by ``hist_item >= 0``).
        item: ``(M,)`` the logged item ``a``.
        feedback: ``(M,)`` its feedback class ``r``.
        user: ``(M,)`` user id.
        step: ``(M,)`` index of the step in the :class:`StepLog`.
    """

    hist_item: np.ndarray
    hist_fb: np.ndarray
    item: np.ndarray
    feedback: np.ndarray
    user: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return int(self.item.shape[0])

    def subset(self, idx: np.ndarray) -> Examples:
        """The examples at ``idx``."""
        return Examples(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @property
    def positive(self) -> np.ndarray:
        """``(M,)`` True where the feedback is positive."""
        return self.feedback == POSITIVE


def build_examples(steps: StepLog, history_len: int, idx: np.ndarray | None = None) -> Examples:
    """The examples of the steps ``idx`` (all steps by default) with states of at most ``history_len`` steps."""
    idx = np.arange(steps.n_steps) if idx is None else np.asarray(idx, dtype=np.int64)
    n = int(history_len)
    # Column c of the state holds step page - n + c (the steps just before the example's page), kept where it belongs
    # to the same user (>= start).
    src = steps.page[idx][:, None] - n + np.arange(n)[None, :]
    valid = src >= steps.start[idx][:, None]
    src = np.where(valid, src, 0)
    hist_item = np.where(valid, steps.item[src], PAD).astype(np.int64)
    hist_fb = np.where(valid, steps.feedback[src], 0).astype(np.int64)
    return Examples(hist_item, hist_fb, steps.item[idx], steps.feedback[idx], steps.user[idx], idx)


def split_examples(
    steps: StepLog,
    history_len: int,
    protocol: str = "last",
    seed: int = 0,
    val_fraction: float = 0.3,
    fit_split: str = "train",
) -> dict[str, Examples]:
    """``{"train", "val", "test"}`` examples under ``protocol`` (see the module docstring).

    ``fit_split`` (protocol ``"users"`` only) names the users fitted: ``"train"`` (validation on the val users, test
    on the test users) or ``"test"`` (the held-out model: fitted on the test users, validated on the val users, and
    its "test" set is the train users).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    i = np.arange(steps.n_steps)
    if protocol == "last":
        is_last = i == steps.end - 1
        rest = ~is_last
        # The last remaining step of a user, for a seeded share of the users with at least two steps.
        before_last = i == steps.end - 2
        users = np.unique(steps.user[before_last])
        rng = np.random.default_rng(seed)
        chosen = users[rng.random(users.size) < val_fraction]
        is_val = before_last & np.isin(steps.user, chosen)
        parts = {"train": rest & ~is_val, "val": is_val, "test": is_last}
    else:
        tag = steps.user_split[steps.user]
        if fit_split == "train":
            parts = {"train": tag == 0, "val": tag == 1, "test": tag == 2}
        elif fit_split == "test":
            parts = {"train": tag == 2, "val": tag == 1, "test": tag == 0}
        else:
            raise ValueError(f"fit_split must be 'train' or 'test', got {fit_split!r}")
    return {name: build_examples(steps, history_len, np.flatnonzero(mask)) for name, mask in parts.items()}


def item_embeddings(steps: StepLog, idx: np.ndarray, dim: int = 20, window: int = 5, seed: int = 0) -> np.ndarray:
    """Item2vec-style item embeddings in (-1, 1) from the item sequences of the steps ``idx``.

    The paper's embeddings were pre-trained word2vec vectors supplied by the company. Here: the truncated SVD of the
    positive pointwise mutual information (PPMI) matrix of items co-occurring within ``window`` steps of one user's
    sequence, the matrix that skip-gram with negative sampling factorises implicitly (Levy and Goldberg, "Neural Word
    Embedding as Implicit Matrix Factorization", NeurIPS 2014). Rows are scaled by the largest absolute entry, so
    every coordinate lies in [-1, 1]. Items absent from ``idx`` get the zero vector; only ``idx`` is read, so the test
    steps never shape the embedding.

    Returns:
        ``(n_items, dim)`` float32.
    """
    idx = np.sort(np.asarray(idx, dtype=np.int64))
    n = steps.n_items
    counts = np.zeros((n, n), dtype=np.float64)
    user, item = steps.user[idx], steps.item[idx]
    for d in range(1, window + 1):
        same = user[d:] == user[:-d]
        a, b = item[d:][same], item[:-d][same]
        np.add.at(counts, (a, b), 1.0)
        np.add.at(counts, (b, a), 1.0)
    total = counts.sum()
    emb = np.zeros((n, dim), dtype=np.float64)
    if total > 0:
        row = counts.sum(1, keepdims=True)
        col = counts.sum(0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(counts * total / (row * col))
        ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
        # Randomised range finder (fixed seed): the catalogues hold a few thousand items, a dense SVD is too slow.
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(ppmi @ rng.standard_normal((n, dim + 10)))
        q, _ = np.linalg.qr(ppmi @ (ppmi.T @ q))
        u_small, s, _ = np.linalg.svd(q.T @ ppmi, full_matrices=False)
        emb = (q @ u_small[:, :dim]) * np.sqrt(s[:dim])[None, :]
        k = emb.shape[1]
        if k < dim:
            emb = np.pad(emb, ((0, 0), (0, dim - k)))
    # Items never seen in a co-occurrence keep a small seeded random vector, so that they stay distinguishable.
    empty = ~np.any(emb != 0, axis=1)
    emb[empty] = np.random.default_rng(seed + 1).uniform(-0.05, 0.05, size=(int(empty.sum()), dim))
    scale = np.abs(emb).max()
    return (emb / scale if scale > 0 else emb).astype(np.float32)
