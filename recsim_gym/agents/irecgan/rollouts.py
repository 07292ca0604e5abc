"""Sessions as tensors, offline logs -> sessions, U-A interaction, Monte-Carlo rollouts for q_D, discounted returns.

``docs/irecgan.md#offline-logs`` (offline representation), ``docs/irecgan.md#rollouts-and-q_d`` (interaction,
rollouts, q_D) and Eq. 6/10 of the paper.

A session of ``L`` clicks ``c_1..c_L`` that ends when the user leaves has ``T = L + 1`` steps. Step ``t`` reads the
inputs ``GO, c_1, .., c_t`` (``tokens[:t + 1]``), shows ``lists[t]`` (``k`` items + ``EOS``) and the user picks
``target[t]``: the click ``c_{t+1}``, or ``EOS`` at the last step. A session cut by a length cap (the log's click cap,
or the generation cap) has ``T = L`` steps and no ``EOS`` step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from recsim_gym.agents.irecgan.networks import (
    EOS,
    GO,
    N_SPECIAL,
    PAD,
    AgentModel,
    Discriminator,
    SessionEncoder,
    UserModel,
    gumbel_noise,
)
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs

__all__ = [
    "SessionBatch",
    "Simulation",
    "discounted_returns",
    "discriminator_probs",
    "generate_sessions",
    "q_d_scores",
    "sessions_from_logs",
    "simulate",
]

# Rows scored by D in one forward pass when computing q_D (bounds memory on large rollout batches).
_D_CHUNK = 4096


@dataclass
class SessionBatch:
    """``N`` sessions as padded tensors (step layout of the module docstring).

    Attributes:
        tokens: ``(N, T)`` int64 input tokens (``GO`` first, ``PAD`` after the session).
        lists: ``(N, T, W)`` int64 shown lists (item tokens, ``EOS`` appended, ``PAD`` padding).
        target: ``(N, T)`` int64 position in the list of the user's choice (0 on padded steps).
        mask: ``(N, T)`` bool valid steps.
        reward: ``(N, T)`` float32 environment reward of the step: ``1 + lambda_r * purchase`` on a click, 0 on the
            ``EOS`` step (the released code's ``1 + 3 * purchase`` with ``lambda_r = 3``).
        qd: ``(N, T)`` float32 sequence-generation score ``q_D`` of each step (1 for logged sessions).
        purchase: ``(N, T)`` float32 purchase label of the click (0 where the log has none).
    """

    tokens: torch.Tensor
    lists: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    reward: torch.Tensor
    qd: torch.Tensor
    purchase: torch.Tensor

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        """``(N,)`` steps per session."""
        return self.mask.sum(1)

    @property
    def target_tokens(self) -> torch.Tensor:
        """``(N, T)`` token the user chose at each step (``EOS`` when leaving)."""
        return self.lists.gather(-1, self.target.unsqueeze(-1)).squeeze(-1)

    def select(self, index: torch.Tensor | np.ndarray) -> SessionBatch:
        """The sessions ``index`` (in that order), trimmed to their longest session."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        t = max(int(self.mask[idx].sum(1).max()), 1) if idx.numel() else 1
        return SessionBatch(*(getattr(self, f.name)[idx, :t] for f in fields(self)))

    @staticmethod
    def concat(batches: list[SessionBatch]) -> SessionBatch:
        """Stack sessions, padding steps and list widths to the largest."""
        batches = [b for b in batches if len(b)]
        if not batches:
            raise ValueError("nothing to concatenate")
        t = max(b.tokens.shape[1] for b in batches)
        w = max(b.lists.shape[2] for b in batches)
        parts: dict[str, list[torch.Tensor]] = {f.name: [] for f in fields(SessionBatch)}
        for b in batches:
            dt, dw = t - b.tokens.shape[1], w - b.lists.shape[2]
            for f in fields(b):
                x = getattr(b, f.name)
                if f.name == "lists":
                    x = torch.nn.functional.pad(x, (0, dw, 0, dt), value=PAD)
                else:
                    x = torch.nn.functional.pad(x, (0, dt), value=PAD if x.dtype == torch.long else 0)
                parts[f.name].append(x)
        return SessionBatch(**{name: torch.cat(xs) for name, xs in parts.items()})

    def with_qd(self, qd: torch.Tensor) -> SessionBatch:
        """A copy whose ``qd`` is replaced (zero on padded steps)."""
        return replace(self, qd=qd * self.mask)


def sessions_from_logs(logs: SessionLogs, lambda_r: float = 3.0, min_clicks: int = 1) -> SessionBatch:
    """Offline sessions of a :class:`~recsim_gym.envs.synthetic_mdp.logs.SessionLogs` as a :class:`SessionBatch`.

    * Sessions with fewer than ``min_clicks`` clicks are dropped (the released code keeps sessions of 1 to 39 clicks;
      a zero-click session has no click to learn from).
    * The logged failing step becomes the ``EOS`` step, with the list the user actually left on. The released code
      logs no failing list and invents one (``EOS`` + 15-99 random items, ``docs/irecgan.md``), which a discriminator
      can tell from a generated list by its length alone.
    * A session cut at the log's click cap has no ``EOS`` step (the user did not leave); the released code drops
      sessions of 40 clicks instead.

    Args:
        logs: the logged sessions (failing steps included, as
            :func:`~recsim_gym.envs.synthetic_mdp.generate_logs` writes).
        lambda_r: weight of purchases in the step reward (no effect on simulated logs, which have none).
        min_clicks: minimum clicks of a kept session.

    Returns:
        The sessions, in log order, with ``qd = 1``.
    """
    clicks = logs.clicks
    keep = np.flatnonzero(clicks >= min_clicks)
    if keep.size == 0:
        raise ValueError(f"the logs hold no session with at least {min_clicks} click(s)")
    new_id = np.full(logs.n_sessions, -1, dtype=np.int64)
    new_id[keep] = np.arange(keep.size)
    rows = np.flatnonzero(new_id[logs.session] >= 0)
    sess = new_id[logs.session[rows]]
    pos = rows - logs.start[logs.session[rows]]
    lengths = np.diff(logs.start)[keep]
    n, t, k = keep.size, int(lengths.max()), logs.slate_size

    tokens = np.full((n, t), PAD, dtype=np.int64)
    tokens[:, 0] = GO
    click = logs.click[rows]
    is_click = click >= 0
    # The click of step t is the input of step t + 1 when the session has such a step.
    feeds = is_click & (pos + 1 < lengths[sess])
    tokens[sess[feeds], pos[feeds] + 1] = click[feeds] + N_SPECIAL

    lists = np.full((n, t, k + 1), PAD, dtype=np.int64)
    lists[sess, pos, :k] = logs.slate[rows] + N_SPECIAL
    lists[sess, pos, k] = EOS
    hit = logs.slate[rows] == click[:, None]
    target = np.zeros((n, t), dtype=np.int64)
    target[sess, pos] = np.where(is_click, hit.argmax(1), k)
    if (is_click & ~hit.any(1)).any():
        raise ValueError("a logged click is not in the list it was shown in")
    mask = np.zeros((n, t), dtype=bool)
    mask[sess, pos] = True
    reward = np.zeros((n, t), dtype=np.float32)
    purchase = np.zeros((n, t), dtype=np.float32)  # simulated logs have no purchases
    reward[sess, pos] = np.where(is_click, 1.0 + lambda_r * purchase[sess, pos], 0.0)
    return SessionBatch(
        tokens=torch.from_numpy(tokens),
        lists=torch.from_numpy(lists),
        target=torch.from_numpy(target),
        mask=torch.from_numpy(mask),
        reward=torch.from_numpy(reward),
        qd=torch.from_numpy(mask.astype(np.float32)),
        purchase=torch.from_numpy(purchase),
    )


@dataclass
class Simulation:
    """Output of :func:`simulate`: ``R`` interaction sequences in relative time ``j = 0..J-1``.

    Attributes:
        tokens: ``(R, J)`` input token of each step.
        lists: ``(R, J, k + 1)`` lists A showed (``EOS`` appended).
        target: ``(R, J)`` U's choice (position in the list; ``k`` = ``EOS``).
        mask: ``(R, J)`` bool valid steps.
        purchase: ``(R, J)`` float32 U's thresholded purchase prediction (0 without a reward head).
        agent_states / user_states: per step, the LSTM state after reading ``tokens[:, j]``, stacked as
            ``(J, layers, R, H)`` pairs ``(h, c)``; None unless requested.
    """

    tokens: torch.Tensor
    lists: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    purchase: torch.Tensor
    agent_states: tuple[torch.Tensor, torch.Tensor] | None = None
    user_states: tuple[torch.Tensor, torch.Tensor] | None = None


@torch.no_grad()
def simulate(
    agent: AgentModel,
    user: UserModel,
    first_tokens: torch.Tensor,
    budget: torch.Tensor,
    slate_size: int,
    generator: torch.Generator,
    agent_state: tuple[torch.Tensor, torch.Tensor] | None = None,
    user_state: tuple[torch.Tensor, torch.Tensor] | None = None,
    use_reward_head: bool = False,
    record_states: bool = False,
) -> Simulation:
    """Let A recommend and U respond, step by step, for ``R`` sequences in parallel (``docs/irecgan.md``).

    Each step: both LSTMs read the current token; A samples ``slate_size`` items (Gumbel-top-k over its item
    softmax) and appends ``EOS``; U samples its choice from its click softmax over that list (Gumbel-max); ``EOS``
    ends the sequence, otherwise the click is the next token. Row ``r`` runs at most ``budget[r]`` steps.

    Args:
        agent: A.
        user: U.
        first_tokens: ``(R,)`` first input token of each row (``GO`` for a new session).
        budget: ``(R,)`` maximum steps per row (>= 1).
        slate_size: items A recommends per step.
        generator: source of all sampling noise.
        agent_state: A's initial LSTM state (zeros if None).
        user_state: U's initial LSTM state (zeros if None).
        use_reward_head: sample purchases with U's reward head (thresholded at 0.5, as the code).
        record_states: keep the per-step LSTM states (needed to start rollouts from every prefix).
    """
    r = int(first_tokens.shape[0])
    steps = int(budget.max()) if r else 0
    k = slate_size
    tokens = torch.full((r, steps), PAD, dtype=torch.long)
    lists = torch.full((r, steps, k + 1), PAD, dtype=torch.long)
    target = torch.zeros((r, steps), dtype=torch.long)
    mask = torch.zeros((r, steps), dtype=torch.bool)
    purchase = torch.zeros((r, steps))
    a_states: list[tuple[torch.Tensor, torch.Tensor]] = []
    u_states: list[tuple[torch.Tensor, torch.Tensor]] = []
    # The LSTMs run on the live rows only (a row never comes back once it has left or spent its budget): most
    # Monte-Carlo rollouts end well before the cap, so this skips over half of the rows' steps. The noise is still
    # drawn for all R rows, so that a row's sample does not depend on which other rows are live.
    agent_state = _full_state(agent.encoder, r, agent_state)
    user_state = _full_state(user.encoder, r, user_state)
    if record_states:
        full_a, full_u = agent_state, user_state
    live = torch.arange(r)
    alive = torch.ones(r, dtype=torch.bool)
    ran = 0
    x = first_tokens.clone()
    for j in range(steps):
        active = alive & (budget > j)
        keep = active[live]
        if not bool(keep.any()):
            break
        ran += 1
        if not bool(keep.all()):
            live = live[keep]
            agent_state = (agent_state[0][:, keep], agent_state[1][:, keep])
            user_state = (user_state[0][:, keep], user_state[1][:, keep])
        x_live = x[live]
        out_a, agent_state = agent.encoder(x_live[:, None], agent_state)
        out_u, user_state = user.encoder(x_live[:, None], user_state)
        if record_states:  # rows that are not live keep their last state (q_d_scores never reads it)
            full_a = _scatter_state(full_a, live, agent_state)
            full_u = _scatter_state(full_u, live, user_state)
            a_states.append(full_a)
            u_states.append(full_u)
        item_logits = agent.item_logits(out_a[:, 0])
        item_noise = gumbel_noise((r, item_logits.shape[-1]), generator)[live]
        items = (item_logits + item_noise).topk(k, dim=-1).indices + N_SPECIAL
        shown = torch.cat([items, torch.full((live.numel(), 1), EOS, dtype=torch.long)], dim=1)
        logp = user.list_logits(out_u[:, 0], shown).log_softmax(-1)
        choice = (logp + gumbel_noise((r, k + 1), generator)[live]).argmax(-1)
        chosen = shown.gather(1, choice[:, None]).squeeze(1)
        tokens[live, j] = x_live
        lists[live, j] = shown
        target[live, j] = choice
        mask[live, j] = True
        if use_reward_head:
            bought = (torch.sigmoid(user.reward_logit(out_u[:, 0], chosen)) > 0.5).float()
            purchase[live, j] = torch.where(chosen != EOS, bought, 0.0)
        alive[live] = chosen != EOS
        x[live] = chosen
    # Columns after the last step run (every row finished early) are dropped.
    sim = Simulation(tokens[:, :ran], lists[:, :ran], target[:, :ran], mask[:, :ran], purchase[:, :ran])
    if record_states and a_states:
        sim.agent_states = (torch.stack([s[0] for s in a_states]), torch.stack([s[1] for s in a_states]))
        sim.user_states = (torch.stack([s[0] for s in u_states]), torch.stack([s[1] for s in u_states]))
    return sim


def _full_state(
    encoder: SessionEncoder, rows: int, state: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``state``, or the zero state an LSTM starts from when given none, as ``(layers, rows, H)`` pairs."""
    if state is not None:
        return state
    zeros = torch.zeros(encoder.lstm.num_layers, rows, encoder.lstm.hidden_size)
    return zeros, zeros.clone()


def _scatter_state(
    full: tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor, part: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of ``full`` whose ``rows`` hold ``part``."""
    h, c = full[0].clone(), full[1].clone()
    h[:, rows], c[:, rows] = part
    return h, c


def _to_batch(sim: Simulation, lambda_r: float) -> SessionBatch:
    click = sim.mask & (sim.target != sim.lists.shape[2] - 1)
    reward = torch.where(click, 1.0 + lambda_r * sim.purchase, torch.zeros_like(sim.purchase))
    return SessionBatch(
        tokens=sim.tokens,
        lists=sim.lists,
        target=sim.target,
        mask=sim.mask,
        reward=reward,
        qd=sim.mask.float(),
        purchase=sim.purchase,
    )


def generate_sessions(
    agent: AgentModel,
    user: UserModel,
    n_sessions: int,
    max_len: int,
    slate_size: int,
    generator: torch.Generator,
    lambda_r: float = 3.0,
    use_reward_head: bool = False,
    record_states: bool = False,
) -> tuple[SessionBatch, Simulation]:
    """Generate ``n_sessions`` sessions by letting A and U interact from ``GO`` with zero LSTM states.

    Generation stops at ``EOS`` or after ``max_len`` steps (the code: ``2 * int(mean offline length)``). The first
    input is ``GO`` for every session, as every logged session starts with it (the code draws the first click from
    the empirical distribution of logged first clicks, which in simulation is always the dummy item).

    Returns:
        The sessions (``qd = 1``) and the raw :class:`Simulation` (with LSTM states if ``record_states``).
    """
    first = torch.full((n_sessions,), GO, dtype=torch.long)
    budget = torch.full((n_sessions,), max_len, dtype=torch.long)
    sim = simulate(
        agent, user, first, budget, slate_size, generator, use_reward_head=use_reward_head, record_states=record_states
    )
    return _to_batch(sim, lambda_r), sim


@torch.no_grad()
def discriminator_probs(disc: Discriminator, batch: SessionBatch, use_purchase: bool = False) -> torch.Tensor:
    """``D(tau)`` of every session ``(N,)``, computed in chunks."""
    # Chunks of sessions of similar length: each chunk is trimmed to its longest session, so D reads few padded
    # steps (rollouts spliced onto prefixes vary a lot in length). D's logit ignores the padding, so the order of
    # the rows changes nothing.
    order = torch.argsort(batch.lengths, stable=True)
    probs = torch.zeros(len(batch))
    for start in range(0, len(batch), _D_CHUNK):
        idx = order[start : start + _D_CHUNK]
        part = batch.select(idx)
        logit = disc(part.tokens, part.lists, part.target, part.mask, part.purchase if use_purchase else None)
        probs[idx] = torch.sigmoid(logit)
    return probs


@torch.no_grad()
def q_d_scores(
    disc: Discriminator,
    agent: AgentModel,
    user: UserModel,
    sessions: SessionBatch,
    sim: Simulation,
    n_rollouts: int,
    max_len: int,
    slate_size: int,
    generator: torch.Generator,
    use_reward_head: bool = False,
    use_purchase: bool = False,
) -> torch.Tensor:
    """Sequence-generation scores ``q_D(tau_{0:t})`` of generated sessions (paper Eq. 6).

    For a non-terminal step ``t``: the mean of ``D`` over ``n_rollouts`` completions of the prefix ``tau_{0:t}`` by A
    and U (Monte-Carlo search, from the LSTM states recorded during generation, capped at ``max_len`` steps like the
    generation itself). At the terminal step: ``D`` of the session itself (one evaluation).

    Args:
        disc: D.
        agent: A, the rollout policy's recommender.
        user: U, the rollout policy's user.
        sessions: generated sessions (from :func:`generate_sessions` with ``record_states=True``).
        sim: their :class:`Simulation` (holds the LSTM states).
        n_rollouts: N (5 in the paper's code).
        max_len: the generation cap.
        slate_size: items per list.
        generator: sampling noise.
        use_reward_head: sample purchases in the rollouts (logs with purchase labels only).
        use_purchase: D's purchase weights (logs with purchase labels only).

    Returns:
        ``(N, T)`` float32 ``q_D`` (zero on padded steps).
    """
    if sim.agent_states is None or sim.user_states is None:
        raise ValueError("q_d_scores needs the LSTM states: generate with record_states=True")
    n, t_max = sessions.tokens.shape
    lengths = sessions.lengths
    qd = torch.zeros((n, t_max))
    rows = torch.arange(n)
    # D reads each session once, step by step: its per-step terms give D of the whole session (the terminal q_D), and
    # their running sums and the LSTM states after every step are the shared prefix of every rollout from it, so
    # D then reads only the continuations (the spliced sessions are the same numbers; the test checks it).
    terms, d_states = _disc_terms_and_states(disc, sessions, use_purchase)
    valid = sessions.mask.to(terms.dtype)
    prefix_sum = (terms * valid).cumsum(1)
    qd[rows, lengths - 1] = torch.sigmoid(prefix_sum[rows, lengths - 1] / lengths.clamp_min(1).to(terms.dtype))

    steps = torch.arange(t_max)[None, :]
    prefix = steps < (lengths - 1)[:, None]  # non-terminal steps get rollouts
    b_idx, t_idx = prefix.nonzero(as_tuple=True)
    if b_idx.numel() == 0:
        return qd
    b_rep = b_idx.repeat(n_rollouts)
    t_rep = t_idx.repeat(n_rollouts)
    # The state after reading tokens[:t]; the rollout continues with the click of step t as the next input.
    a_state = _states_at(sim.agent_states, t_rep, b_rep)
    u_state = _states_at(sim.user_states, t_rep, b_rep)
    first = sessions.target_tokens[b_rep, t_rep]
    budget = max_len - (t_rep + 1)
    cont = _to_batch(
        simulate(
            agent,
            user,
            first,
            budget,
            slate_size,
            generator,
            agent_state=a_state,
            user_state=u_state,
            use_reward_head=use_reward_head,
        ),
        0.0,
    )
    # D of prefix + continuation: the prefix's term sum plus the continuation's terms, read from D's state after the
    # prefix, over the total number of steps. Rows go in chunks of similar continuation length (fewer padded steps).
    cont_sum = torch.zeros(len(cont))
    order = torch.argsort(cont.lengths, stable=True)
    for start in range(0, len(cont), _D_CHUNK):
        idx = order[start : start + _D_CHUNK]
        part = cont.select(idx)
        out, _ = disc.encoder(part.tokens, _states_at(d_states, t_rep[idx], b_rep[idx]))
        part_terms = disc.step_terms(out, part.lists, part.target, part.purchase if use_purchase else None)
        cont_sum[idx] = (part_terms * part.mask.to(part_terms.dtype)).sum(1)
    total = (t_rep + 1 + cont.lengths).to(cont_sum.dtype)
    probs = torch.sigmoid((prefix_sum[b_rep, t_rep] + cont_sum) / total)
    qd[b_idx, t_idx] = probs.view(n_rollouts, -1).mean(0)
    return qd


def _states_at(
    states: tuple[torch.Tensor, torch.Tensor], t: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM states ``(layers, R, H)`` of rows ``b`` after step ``t``, from per-step states ``(T, layers, N, H)``."""
    h, c = states
    return h[t, :, b].transpose(0, 1).contiguous(), c[t, :, b].transpose(0, 1).contiguous()


def _disc_terms_and_states(
    disc: Discriminator, batch: SessionBatch, use_purchase: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """D's per-step terms ``(N, T)`` of ``batch`` and its LSTM states after every step, ``(T, layers, N, H)`` each."""
    state = None
    outs, hs, cs = [], [], []
    for t in range(batch.tokens.shape[1]):
        out, state = disc.encoder(batch.tokens[:, t : t + 1], state)
        outs.append(out)
        hs.append(state[0])
        cs.append(state[1])
    terms = disc.step_terms(torch.cat(outs, 1), batch.lists, batch.target, batch.purchase if use_purchase else None)
    return terms, (torch.stack(hs), torch.stack(cs))


def discounted_returns(step_reward: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """``R_t = sum_{t' >= t} gamma^(t' - t) r_{t'}`` over valid steps (paper Eq. 9-10), ``(N, T)`` -> ``(N, T)``."""
    r = step_reward * mask
    out = torch.zeros_like(r)
    running = torch.zeros(r.shape[0], dtype=r.dtype)
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return out * mask
