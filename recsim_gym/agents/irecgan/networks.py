"""The three IRecGAN networks (Bai et al., NeurIPS 2019): user behaviour model U, agent A, discriminator D.

All three read a click sequence through their own item embeddings and their own LSTM (paper §4-5; released code
``src/environment.py``, ``src/agent.py``, ``src/discriminator.py``; ``docs/irecgan.md``). Token ids follow
:data:`PAD` / :data:`GO` / :data:`EOS` and then the items: item ``i`` of the log is token ``i + N_SPECIAL``.

Tensors of a batch of sessions (see :class:`recsim_gym.agents.irecgan.rollouts.SessionBatch`):

* ``tokens`` ``(B, T)``: input token of step ``t``: ``GO`` at ``t = 0``, the click of step ``t - 1`` afterwards.
* ``lists`` ``(B, T, W)``: the list shown at step ``t`` (token ids, ``EOS`` appended, ``PAD`` beyond).
* ``target`` ``(B, T)``: position in ``lists[b, t]`` of what the user chose (a click, or ``EOS`` when leaving).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EOS",
    "GO",
    "N_SPECIAL",
    "PAD",
    "AgentModel",
    "Discriminator",
    "SessionEncoder",
    "UserModel",
    "gumbel_noise",
    "gumbel_topk",
    "initial_embeddings",
]

#: Padding token (lists and sequences).
PAD = 0
#: Start token: the first input of every session (the released code uses a dummy click of item 0 instead, which is also
#: a real item, ``docs/irecgan.md#paper-vs-released-code`` item 5).
GO = 1
#: End-of-session option appended to every list: the user leaves ("c_end" of the paper, §5).
EOS = 2
#: Number of special tokens before the first item. The released code also has UNK; every item of a simulated log is
#: known, so it is not needed here.
N_SPECIAL = 3

LSTMState = tuple[torch.Tensor, torch.Tensor]


def initial_embeddings(n_items: int, embed_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Initial item embeddings shared (as values, not parameters) by U, A and D.

    As the released code (``utils.py: build_vocab``): N(0, 1) for items, zero for the special tokens.

    Returns:
        ``(N_SPECIAL + n_items, embed_dim)`` float32.
    """
    table = torch.zeros(N_SPECIAL + n_items, embed_dim)
    table[N_SPECIAL:] = torch.randn(n_items, embed_dim, generator=generator)
    return table


def gumbel_noise(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(U))``.

    The released code clips ``U`` to ``[1e-4, 0.9999]``, which truncates the noise to ``[-2.2, 9.2]``; the exact
    distribution is used here so that Gumbel-top-k is exactly sampling without replacement from the softmax.
    """
    u = torch.rand(shape, generator=generator).clamp_min_(1e-20)  # rand < 1, so -log(u) > 0: never inf
    return -torch.log(-torch.log(u))


def gumbel_topk(
    logits: torch.Tensor, k: int, generator: torch.Generator | None = None, deterministic: bool = False
) -> torch.Tensor:
    """``k`` distinct indices along the last axis: a sample without replacement from ``softmax(logits)``.

    Perturbing the logits with i.i.d. Gumbel noise and taking the top ``k`` draws ``k`` items without replacement
    with the successive-softmax probabilities (Vieira 2014; paper §4 "sampling without replacement"). ``topk``
    returns distinct positions, so an item can never be repeated.

    Args:
        logits: ``(..., n)`` unnormalised log-probabilities.
        k: number of indices, ``1 <= k <= n``.
        generator: source of the noise.
        deterministic: the ``k`` largest logits instead of a sample.

    Returns:
        ``(..., k)`` int64 indices, in decreasing order of perturbed logit.
    """
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"k must lie in [1, {logits.shape[-1]}], got {k}")
    scores = logits if deterministic else logits + gumbel_noise(logits.shape, generator)
    return scores.topk(k, dim=-1).indices


class SessionEncoder(nn.Module):
    """Item embedding followed by a multi-layer LSTM over the click sequence (``s_t = h(s_{t-1}, e_{t-1})``).

    Args:
        init_embed: ``(V, E)`` initial embedding table (copied into a trainable parameter).
        hidden_size: LSTM units (paper: 512).
        num_layers: LSTM layers (paper: 2).
    """

    def __init__(self, init_embed: torch.Tensor, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(init_embed.clone(), freeze=False)
        self.lstm = nn.LSTM(init_embed.shape[1], hidden_size, num_layers, batch_first=True)

    @property
    def embed_dim(self) -> int:
        """Embedding width E."""
        return int(self.embed.embedding_dim)

    def forward(self, tokens: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Run over ``tokens`` ``(B, T)`` from ``state`` (zeros if None); returns outputs ``(B, T, H)`` and state."""
        out, new_state = self.lstm(self.embed(tokens), state)
        return out, new_state


def _masked_list_logits(logits: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
    """Set padded list slots to -inf; rows with no valid slot (padded steps) become all zeros, never NaN."""
    valid = lists != PAD
    logits = logits.masked_fill(~valid, float("-inf"))
    return torch.where(valid.any(-1, keepdim=True), logits, torch.zeros_like(logits))


class UserModel(nn.Module):
    """U: the user behaviour model (paper Eq. 1-3; ``docs/irecgan.md#user-model-u``).

    * Click head (Eq. 1): ``V^c = (W_c s_t + b_c)^T E_t``; the code takes the *mean* over embedding dimensions instead
      of the sum (a scale of ``1/E``), followed here. A softmax over the shown list (``EOS`` included, padding masked)
      gives ``p(c_t | s_t, a_t)``.
    * Reward head (Eq. 2): ``r_t = sigmoid((W_r s_t + b_r)^T e_{c_t})``, the purchase probability of the clicked item.
      As in the code its inputs are detached (the purchase loss, weighted ``(1 + purchase)^5.3``, must not distort the
      click model) and it is used only when the log carries purchase labels (simulated logs do not).

    Args:
        init_embed: ``(V, E)`` initial embeddings.
        hidden_size: LSTM units.
        num_layers: LSTM layers.
    """

    def __init__(self, init_embed: torch.Tensor, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.encoder = SessionEncoder(init_embed, hidden_size, num_layers)
        e = init_embed.shape[1]
        self.click_proj = nn.Linear(hidden_size, e)  # W_c, b_c
        self.reward_proj = nn.Linear(hidden_size, e)  # W_r, b_r

    def list_logits(self, out: torch.Tensor, lists: torch.Tensor) -> torch.Tensor:
        """Click logits over each list: ``out`` ``(..., H)``, ``lists`` ``(..., W)`` -> ``(..., W)``, PAD at -inf."""
        pref = self.click_proj(out)
        logits = (self.encoder.embed(lists) @ pref.unsqueeze(-1)).squeeze(-1) / self.encoder.embed_dim  # mean over E
        return _masked_list_logits(logits, lists)

    def item_logits(self, out: torch.Tensor) -> torch.Tensor:
        """Click logits of every item (no list, no EOS): ``(..., H)`` -> ``(..., n_items)``.

        Used to deploy U alone as a recommender (the LSTM / LSTMD baselines rank all items by U's click score).
        """
        pref = self.click_proj(out)
        return pref @ self.encoder.embed.weight[N_SPECIAL:].T / self.encoder.embed_dim

    def reward_logit(self, out: torch.Tensor, click_tokens: torch.Tensor) -> torch.Tensor:
        """Logit of the reward head for the clicked tokens: ``(..., H)``, ``(...)`` -> ``(...)``."""
        return (self.reward_proj(out.detach()) * self.encoder.embed(click_tokens).detach()).sum(-1)

    def step_losses(self, tokens: torch.Tensor, lists: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-step click negative log-likelihood ``(B, T)`` and the reward-head logits ``(B, T)``."""
        out, _ = self.encoder(tokens)
        logp = self.list_logits(out, lists).log_softmax(-1)
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        clicked = lists.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return nll, self.reward_logit(out, clicked)


class AgentModel(nn.Module):
    """A: the recommender (paper Eq. 4; ``docs/irecgan.md#agent-a``).

    ``pi(i | s^a_t) = softmax(W^a s^a_t + b^a)`` over the whole vocabulary, from the agent's own embeddings and LSTM.
    A list is ``k`` items sampled without replacement (Gumbel-top-k over the item logits; special tokens are never
    recommended).

    Args:
        init_embed: ``(V, E)`` initial embeddings.
        hidden_size: LSTM units.
        num_layers: LSTM layers.
    """

    def __init__(self, init_embed: torch.Tensor, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.encoder = SessionEncoder(init_embed, hidden_size, num_layers)
        self.policy_head = nn.Linear(hidden_size, init_embed.shape[0])

    def item_logits(self, out: torch.Tensor) -> torch.Tensor:
        """Logits of the items only: ``(..., H)`` -> ``(..., n_items)``."""
        return self.policy_head(out)[..., N_SPECIAL:]

    def step_nll(self, tokens: torch.Tensor, target_tokens: torch.Tensor) -> torch.Tensor:
        """``-log pi(c_{t+1} | s_t)`` per step ``(B, T)``: the REINFORCE surrogate's log-probability (Eq. 8-10).

        The probability of the clicked item under the softmax stands in for ``pi(c_t in a_t | s_t)`` (paper §5.1).
        """
        out, _ = self.encoder(tokens)
        logits = self.policy_head(out)
        return F.cross_entropy(logits.transpose(1, 2), target_tokens, reduction="none")


class Discriminator(nn.Module):
    """D: scores a whole session as real (logged) or generated (``docs/irecgan.md#discriminator-d``).

    The paper defers D to its appendix, so this follows the released code.

    Per step: preference ``p_t = W_p h_t``; candidates ``u_i = W_u e_i`` for the listed items; a soft arg-max item
    ``m_t = sum_i softmax_i(<p_t, u_i> / temperature) u_i``; the clicked candidate ``u_c``. The session logit is the
    mean over steps of ``<m_t, u_c> * w_t`` with ``w_t = 1`` (simulation) or ``w_p * purchase_t + b_p`` (logs with
    purchases), and ``D(tau) = sigmoid(logit)``. The code's soft arg-max ignores list padding
    (``docs/irecgan.md#paper-vs-released-code`` item 7); here padded slots are masked.

    Args:
        init_embed: ``(V, E)`` initial embeddings.
        hidden_size: LSTM units (also the width of ``p_t`` and ``u_i``, 512 in the code).
        num_layers: LSTM layers.
        temperature: soft arg-max temperature (0.1 in the code).
    """

    def __init__(self, init_embed: torch.Tensor, hidden_size: int, num_layers: int, temperature: float = 0.1) -> None:
        super().__init__()
        self.encoder = SessionEncoder(init_embed, hidden_size, num_layers)
        self.pref_proj = nn.Linear(hidden_size, hidden_size)
        self.cand_proj = nn.Linear(init_embed.shape[1], hidden_size)
        self.purchase_weight = nn.Parameter(torch.ones(()))
        self.purchase_bias = nn.Parameter(torch.ones(()))
        self.temperature = float(temperature)

    def forward(
        self,
        tokens: torch.Tensor,
        lists: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        purchase: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Session logits ``(B,)`` (``D = sigmoid``); ``purchase`` ``(B, T)`` enables the purchase weights."""
        out, _ = self.encoder(tokens)
        term = self.step_terms(out, lists, target, purchase)
        m = mask.to(term.dtype)
        return (term * m).sum(1) / m.sum(1).clamp_min(1.0)

    def step_terms(
        self, out: torch.Tensor, lists: torch.Tensor, target: torch.Tensor, purchase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-step terms ``<m_t, u_c> * w_t`` ``(B, T)`` from the encoder outputs ``out`` ``(B, T, H)``.

        The session logit is their mean over the valid steps. A step's term depends on the tokens up to it only (the
        LSTM is causal), which lets q_D reuse a prefix's terms for all of its rollouts.
        """
        p = self.pref_proj(out)  # (B, T, D)
        clicked_tokens = lists.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T)
        if self.encoder.embed.num_embeddings <= lists.numel():
            # W_u e_i for the whole vocabulary, then looked up: the same u_i as projecting every listed embedding,
            # at V rather than B * T * W projections (q_D scores thousands of rollouts per round).
            table = self.cand_proj(self.encoder.embed.weight)  # (V, D)
            cand, clicked = F.embedding(lists, table), F.embedding(clicked_tokens, table)
        else:  # a large vocabulary and few listed slots: project only what is listed
            cand = self.cand_proj(self.encoder.embed(lists))
            clicked = self.cand_proj(self.encoder.embed(clicked_tokens))
        att = _masked_list_logits((cand @ p.unsqueeze(-1)).squeeze(-1) / self.temperature, lists).softmax(-1)
        soft_item = (att.unsqueeze(-2) @ cand).squeeze(-2)  # (B, T, D)
        term = (soft_item * clicked).sum(-1)
        if purchase is not None:
            term = term * (self.purchase_weight * purchase + self.purchase_bias)
        return term
