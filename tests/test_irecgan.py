"""IRecGAN (recsim_gym.agents.irecgan): components, rollouts, learner surface, experiment CLI. Tiny configuration."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recsim_gym.agents.irecgan import CPU_CONFIG, METHODS, IRecGAN, IRecGANConfig, SessionBatch, sessions_from_logs
from recsim_gym.agents.irecgan.irecgan import agent_loss, discriminator_loss, user_loss
from recsim_gym.agents.irecgan.networks import (
    EOS,
    GO,
    N_SPECIAL,
    PAD,
    AgentModel,
    Discriminator,
    UserModel,
    gumbel_noise,
    gumbel_topk,
    initial_embeddings,
)
from recsim_gym.agents.irecgan.rollouts import (
    _to_batch,
    discounted_returns,
    discriminator_probs,
    generate_sessions,
    q_d_scores,
    simulate,
)
from recsim_gym.envs.synthetic_mdp import SyntheticMDP, SyntheticMDPVectorEnv
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs, generate_logs
from recsim_gym.envs.synthetic_mdp.metrics import evaluate_online
from recsim_gym.envs.synthetic_mdp.policies import make_policy

REPO = Path(__file__).resolve().parents[1]

TINY: dict[str, Any] = {
    "embed_dim": 8,
    "hidden_size": 12,
    "num_layers": 1,
    "batch_size": 16,
    "pretrain_agent_epochs": 2,
    "pretrain_user_epochs": 2,
    "pretrain_generated": 24,
    "pretrain_disc_epochs": 1,
    "n_rounds": 1,
    "agent_epochs_per_block": 1,
    "blocks_per_round": 2,
    "disc_epochs": 1,
    "n_rollouts": 2,
    "gen_ratio": 0.25,
    "eval_sessions": 0,
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def mdp() -> SyntheticMDP:
    return SyntheticMDP.draw()


@pytest.fixture(scope="module")
def logs(mdp: SyntheticMDP) -> SessionLogs:
    return generate_logs(make_policy("mix", mdp), 48, seed=3, count="code", batch_size=16)


@pytest.fixture(scope="module")
def offline(logs: SessionLogs) -> SessionBatch:
    return sessions_from_logs(logs)


def _nets(n_items: int = 50, seed: int = 0) -> tuple[UserModel, AgentModel, Discriminator]:
    gen = torch.Generator().manual_seed(seed)
    embed = initial_embeddings(n_items, 8, gen)
    torch.manual_seed(seed)
    return UserModel(embed, 12, 1), AgentModel(embed, 12, 1), Discriminator(embed, 12, 1)


def _params(model: IRecGAN) -> list[torch.Tensor]:
    return [p.detach().clone() for net in (model.user, model.agent, model.disc) for p in net.parameters()]


# ------------------------------------------------------------------------------------------------------------ data


def test_sessions_from_logs_layout(logs: SessionLogs, offline: SessionBatch) -> None:
    clicks = logs.clicks
    kept = np.flatnonzero(clicks >= 1)
    assert len(offline) == kept.size  # zero-click sessions are dropped
    k = logs.slate_size
    for new, old in enumerate(kept[:12]):
        steps = logs.steps(int(old))
        n_steps = steps["click"].shape[0]
        assert int(offline.lengths[new]) == n_steps
        assert offline.tokens[new, 0] == GO
        assert (offline.tokens[new, n_steps:] == PAD).all()
        for t in range(n_steps):
            assert offline.lists[new, t, :k].tolist() == (steps["slate"][t] + N_SPECIAL).tolist()
            assert offline.lists[new, t, k] == EOS
            chosen = int(offline.target_tokens[new, t])
            if steps["click"][t] >= 0:
                assert chosen == steps["click"][t] + N_SPECIAL
                assert offline.reward[new, t] == 1.0
                if t + 1 < n_steps:
                    assert offline.tokens[new, t + 1] == chosen  # the click is the next input
            else:  # the failing step: the user leaves on the list actually shown
                assert chosen == EOS and t == n_steps - 1
                assert offline.reward[new, t] == 0.0
    assert torch.equal(offline.qd, offline.mask.float())


def test_truncated_session_has_no_eos_step(mdp: SyntheticMDP) -> None:
    logs = generate_logs(make_policy("max", mdp), 30, seed=0, max_clicks=3, batch_size=10)
    batch = sessions_from_logs(logs)
    cut = logs.truncated[logs.clicks >= 1]
    assert cut.any()
    ends = batch.target_tokens[torch.arange(len(batch)), batch.lengths - 1]
    assert (ends[torch.from_numpy(cut)] != EOS).all()
    assert (ends[torch.from_numpy(~cut)] == EOS).all()


# ------------------------------------------------------------------------------------------------- gumbel top-k


def test_gumbel_topk_never_repeats_and_samples_softmax() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2000, 50) * 3
    logits[:, 7] = 50.0  # one dominant item must not be drawn twice
    for k in (10, 50):
        idx = gumbel_topk(logits, k, gen)
        assert idx.shape == (2000, k)
        assert all(len(set(row)) == k for row in idx.tolist())
        assert ((idx >= 0) & (idx < 50)).all()
    # k = 1 is a draw from the softmax: frequencies within 5 standard errors.
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    draws = gumbel_topk(probs.log().expand(40000, 4), 1, gen)[:, 0]
    freq = torch.bincount(draws, minlength=4).double() / draws.numel()
    se = torch.sqrt(probs.double() * (1 - probs.double()) / draws.numel())
    assert ((freq - probs.double()).abs() < 5 * se).all()
    assert gumbel_topk(logits, 3, deterministic=True).tolist() == logits.topk(3).indices.tolist()
    with pytest.raises(ValueError):
        gumbel_topk(logits, 51, gen)


# --------------------------------------------------------------------------------------- losses on a fixed batch


def _fit(loss_fn: Any, module: torch.nn.Module, steps: int = 40, lr: float = 1e-2) -> tuple[float, float]:
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    first = last = float("nan")
    for i in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == 0:
            first = float(loss.detach())
        last = float(loss.detach())
    return first, last


def test_each_component_loss_decreases_on_a_fixed_batch(offline: SessionBatch) -> None:
    user, agent, disc = _nets()
    batch = offline.select(np.arange(16))
    first, last = _fit(lambda: user_loss(user, batch), user)
    assert last < 0.9 * first, (first, last)
    first, last = _fit(lambda: agent_loss(agent, batch, 0.9), agent)
    assert last < 0.8 * first, (first, last)
    fake, _ = generate_sessions(agent, user, 16, 8, 10, torch.Generator().manual_seed(1))
    first, last = _fit(lambda: discriminator_loss(disc, batch, fake)[0], disc, lr=3e-3)
    assert last < 0.5 * first, (first, last)
    assert discriminator_loss(disc, batch, fake)[1] > 0.75  # chance is 0.5


def test_reward_head_loss_decreases_and_weighting(offline: SessionBatch) -> None:
    user, _, _ = _nets()
    batch = offline.select(np.arange(16))
    click_steps = batch.mask & (batch.target_tokens != EOS)
    # Purchase labels that depend on the clicked item, so that the head can learn them.
    batch.purchase = ((batch.target_tokens % 3 == 0) & click_steps).float()
    with torch.no_grad():
        base = user_loss(user, batch)
        with_head = user_loss(user, batch, use_reward_head=True)
    assert with_head > base

    def head_only() -> torch.Tensor:
        return user_loss(user, batch, use_reward_head=True) - user_loss(user, batch).detach()

    first, last = _fit(head_only, user, steps=60)
    assert last < 0.5 * first, (first, last)
    # q_D weighting (Eq. 7): halving every weight halves the loss; zero weights give zero.
    with torch.no_grad():
        full = user_loss(user, batch.with_qd(batch.mask.float()), weighted=True)
        half = user_loss(user, batch.with_qd(0.5 * batch.mask.float()), weighted=True)
        zero = user_loss(user, batch.with_qd(torch.zeros_like(batch.qd)), weighted=True)
    assert math.isclose(float(half), 0.5 * float(full), rel_tol=1e-5) and float(zero) == 0.0


@pytest.mark.parametrize("vocab", [20, 200])  # 20 <= listed slots: vocabulary projection; 200 >: listed items only
def test_discriminator_and_click_head_equal_their_definitions(vocab: int) -> None:
    """D's logit and U's list logits equal the per-slot formulas of the docstrings (projection of each listed item)."""
    from recsim_gym.agents.irecgan.networks import _masked_list_logits

    torch.manual_seed(vocab)
    emb = torch.randn(vocab, 6)
    disc, user = Discriminator(emb, 8, 1), UserModel(emb, 8, 1)
    tokens, lists = torch.randint(0, vocab, (3, 4)), torch.randint(0, vocab, (3, 4, 5))
    lists[0, 3] = PAD  # a padded step: no valid slot
    lists[1, :, 4] = PAD  # a padded slot
    target, mask = torch.randint(0, 4, (3, 4)), torch.ones(3, 4, dtype=torch.bool)
    mask[0, 3] = False
    out, _ = disc.encoder(tokens)
    pref, cand = disc.pref_proj(out), disc.cand_proj(disc.encoder.embed(lists))  # (B, T, D), (B, T, W, D)
    att = _masked_list_logits((pref.unsqueeze(-2) * cand).sum(-1) / disc.temperature, lists).softmax(-1)
    soft_item = (att.unsqueeze(-1) * cand).sum(-2)
    clicked = cand[torch.arange(3)[:, None], torch.arange(4)[None, :], target]
    term = (soft_item * clicked).sum(-1) * mask
    torch.testing.assert_close(disc(tokens, lists, target, mask), term.sum(1) / mask.sum(1), atol=1e-5, rtol=1e-5)
    out, _ = user.encoder(tokens)
    expected = _masked_list_logits((user.click_proj(out).unsqueeze(-2) * user.encoder.embed(lists)).mean(-1), lists)
    torch.testing.assert_close(user.list_logits(out, lists), expected)


def test_discounted_returns_and_agent_loss_by_hand(offline: SessionBatch) -> None:
    reward = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    ret = discounted_returns(reward, mask, 0.9)
    assert torch.allclose(ret, torch.tensor([[1.9, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]))
    _, agent, _ = _nets()
    batch = offline.select(np.arange(4)).with_qd(0.5 * offline.select(np.arange(4)).mask.float())
    nll = agent.step_nll(batch.tokens, batch.target_tokens)
    m = batch.mask.float()
    want = (discounted_returns(0.5 * batch.reward, m, 0.9) * nll * m).sum() / m.sum()
    assert torch.allclose(agent_loss(agent, batch, 0.9), want)


# --------------------------------------------------------------------------------------------------- rollouts, q_D


def test_generated_sessions_and_q_d(offline: SessionBatch) -> None:
    user, agent, disc = _nets()
    gen = torch.Generator().manual_seed(5)
    sessions, sim = generate_sessions(agent, user, 40, 6, 10, gen, record_states=True)
    lengths = sessions.lengths
    assert (lengths >= 1).all() and (lengths <= 6).all()
    assert (sessions.tokens[:, 0] == GO).all()
    for b in range(40):
        lst = sessions.lists[b, : int(lengths[b])]
        assert (lst[:, -1] == EOS).all()
        assert all(len(set(row[:-1].tolist())) == 10 for row in lst)  # A never repeats an item
        ends = sessions.target_tokens[b, int(lengths[b]) - 1]
        assert ends == EOS or lengths[b] == 6  # the session ends at EOS or at the cap
        assert (sessions.target_tokens[b, : int(lengths[b]) - 1] != EOS).all()

    qd = q_d_scores(disc, agent, user, sessions, sim, 3, 6, 10, gen)
    final = discriminator_probs(disc, sessions)
    rows = torch.arange(40)
    # q_D at the terminal step is D's score of the completed session (Eq. 6, t = T).
    assert torch.allclose(qd[rows, lengths - 1], final)
    assert ((qd > 0) & (qd < 1))[sessions.mask].all()
    assert (qd[~sessions.mask] == 0).all()
    # A discriminator that outputs logit 0 everywhere gives q_D = 1/2 at every step, rollouts included.
    flat = Discriminator(initial_embeddings(50, 8, torch.Generator().manual_seed(0)), 12, 1)
    with torch.no_grad():
        flat.pref_proj.weight.zero_()
        flat.pref_proj.bias.zero_()
        flat.cand_proj.weight.zero_()
        flat.cand_proj.bias.zero_()
    assert torch.allclose(q_d_scores(flat, agent, user, sessions, sim, 2, 6, 10, gen)[sessions.mask], torch.tensor(0.5))
    with pytest.raises(ValueError, match="record_states"):
        plain, plain_sim = generate_sessions(agent, user, 4, 6, 10, gen)
        q_d_scores(disc, agent, user, plain, plain_sim, 2, 6, 10, gen)


def _splice(base: SessionBatch, b: torch.Tensor, t: torch.Tensor, cont: SessionBatch, max_len: int) -> SessionBatch:
    """Reference for q_D: sequences made of steps ``0..t[r]`` of ``base[b[r]]`` followed by the steps of ``cont[r]``."""
    r = b.shape[0]
    width = max(base.lists.shape[2], cont.lists.shape[2])
    pos = torch.arange(max_len)[None, :].expand(r, -1)
    from_base = pos <= t[:, None]
    base_pos = pos.clamp(max=base.tokens.shape[1] - 1)
    cont_pos = (pos - t[:, None] - 1).clamp(0, max(cont.tokens.shape[1] - 1, 0))
    in_cont = (pos - t[:, None] - 1 < cont.tokens.shape[1]) & ~from_base

    def pick(base_x: torch.Tensor, cont_x: torch.Tensor, fill: float | int) -> torch.Tensor:
        bx = base_x[b[:, None], base_pos]
        cx = cont_x[torch.arange(r)[:, None], cont_pos]
        extra = (1,) * (bx.dim() - 2)  # broadcast the (R, T) conditions over a list axis
        return torch.where(from_base.view(r, -1, *extra), bx, torch.where(in_cont.view(r, -1, *extra), cx, fill))

    pad = torch.nn.functional.pad
    base_lists = pad(base.lists, (0, width - base.lists.shape[2]), value=PAD)
    cont_lists = pad(cont.lists, (0, width - cont.lists.shape[2]), value=PAD)
    mask = torch.where(from_base, torch.ones_like(from_base), in_cont & cont.mask[torch.arange(r)[:, None], cont_pos])
    out = SessionBatch(
        tokens=pick(base.tokens, cont.tokens, PAD),
        lists=pick(base_lists, cont_lists, PAD),
        target=pick(base.target, cont.target, 0),
        mask=mask,
        reward=pick(base.reward, cont.reward, 0.0),
        qd=mask.float(),
        purchase=pick(base.purchase, cont.purchase, 0.0),
    )
    # Steps past a continuation's end must look padded to D.
    out.tokens = torch.where(out.mask, out.tokens, PAD)
    out.lists = torch.where(out.mask[..., None], out.lists, PAD)
    return out


def _q_d_by_splicing(disc, agent, user, sessions, sim, n_rollouts, max_len, k, gen, purchase=False):  # type: ignore[no-untyped-def]
    """Reference for ``q_d_scores``: D reads every rollout spliced onto its prefix from the first step."""
    n, t_max = sessions.tokens.shape
    lengths = sessions.lengths
    qd = torch.zeros((n, t_max))
    qd[torch.arange(n), lengths - 1] = discriminator_probs(disc, sessions, purchase)
    b_idx, t_idx = (torch.arange(t_max)[None, :] < (lengths - 1)[:, None]).nonzero(as_tuple=True)
    b_rep, t_rep = b_idx.repeat(n_rollouts), t_idx.repeat(n_rollouts)
    (h_a, c_a), (h_u, c_u) = sim.agent_states, sim.user_states
    a_state = (h_a[t_rep, :, b_rep].transpose(0, 1).contiguous(), c_a[t_rep, :, b_rep].transpose(0, 1).contiguous())
    u_state = (h_u[t_rep, :, b_rep].transpose(0, 1).contiguous(), c_u[t_rep, :, b_rep].transpose(0, 1).contiguous())
    first = sessions.target_tokens[b_rep, t_rep]
    budget = max_len - (t_rep + 1)
    cont = simulate(agent, user, first, budget, k, gen, a_state, u_state, use_reward_head=purchase)
    full = _splice(sessions, b_rep, t_rep, _to_batch(cont, 0.0), max_len)
    qd[b_idx, t_idx] = discriminator_probs(disc, full, purchase).view(n_rollouts, -1).mean(0)
    return qd


@torch.no_grad()
@pytest.mark.parametrize("purchase", [False, True])
def test_q_d_reuses_the_prefix_with_the_spliced_sessions_scores(purchase: bool) -> None:
    """q_D from D's prefix states and term sums equals D read over every spliced rollout from the first step."""
    user, agent, disc = _nets()
    gen = torch.Generator().manual_seed(8)
    sessions, sim = generate_sessions(agent, user, 60, 9, 10, gen, use_reward_head=purchase, record_states=True)
    assert int(sessions.lengths.max()) > 3  # prefixes of several lengths
    if purchase:
        assert sessions.purchase.any() and (sessions.purchase[sessions.mask] == 0).any()
        with torch.no_grad():
            disc.purchase_weight.fill_(2.5)  # purchase weights away from their initial 1 so they matter
    kw = {"use_reward_head": purchase, "use_purchase": purchase}
    got = q_d_scores(disc, agent, user, sessions, sim, 4, 9, 10, torch.Generator().manual_seed(9), **kw)
    want = _q_d_by_splicing(disc, agent, user, sessions, sim, 4, 9, 10, torch.Generator().manual_seed(9), purchase)
    assert torch.allclose(got, want, atol=1e-6)
    assert (got[sessions.mask] - 0.5).abs().max() > 1e-3  # D is not flat, so the comparison has teeth


def test_rollouts_continue_the_prefix(offline: SessionBatch) -> None:
    user, agent, _ = _nets()
    gen = torch.Generator().manual_seed(2)
    base, _ = generate_sessions(agent, user, 6, 7, 10, gen)
    cont, _ = generate_sessions(agent, user, 6, 5, 10, gen)
    b = torch.tensor([0, 1, 2, 3, 4, 5])
    t = torch.tensor([0, 0, 1, 0, 2, 1]).clamp(max=base.lengths - 1)
    full = _splice(base, b, t, cont, 7)
    for r in range(6):
        n = int(t[r]) + 1
        assert torch.equal(full.tokens[r, :n], base.tokens[b[r], :n])
        assert torch.equal(full.lists[r, :n], base.lists[b[r], :n])
        assert torch.equal(full.target[r, :n], base.target[b[r], :n])
        m = int(cont.lengths[r])
        steps = min(m, 7 - n)
        assert torch.equal(full.tokens[r, n : n + steps], cont.tokens[r, :steps])
        assert int(full.lengths[r]) == n + steps


def _simulate_every_row(agent, user, first, budget, k, gen, a_state, u_state):  # type: ignore[no-untyped-def]
    """Reference for ``simulate``: both LSTMs step every row at every step, finished rows included."""
    r, steps = first.shape[0], int(budget.max())
    tokens = torch.full((r, steps), PAD, dtype=torch.long)
    lists = torch.full((r, steps, k + 1), PAD, dtype=torch.long)
    target = torch.zeros((r, steps), dtype=torch.long)
    mask = torch.zeros((r, steps), dtype=torch.bool)
    alive, x, a_states = torch.ones(r, dtype=torch.bool), first.clone(), []
    for j in range(steps):
        active = alive & (budget > j)
        out_a, a_state = agent.encoder(x[:, None], a_state)
        out_u, u_state = user.encoder(x[:, None], u_state)
        a_states.append(a_state[0])
        items = gumbel_topk(agent.item_logits(out_a[:, 0]), k, gen) + N_SPECIAL
        shown = torch.cat([items, torch.full((r, 1), EOS)], dim=1)
        logp = user.list_logits(out_u[:, 0], shown).log_softmax(-1)
        choice = (logp + gumbel_noise(logp.shape, gen)).argmax(-1)
        chosen = shown.gather(1, choice[:, None]).squeeze(1)
        tokens[:, j] = torch.where(active, x, PAD)
        lists[active, j] = shown[active]
        target[:, j] = torch.where(active, choice, 0)
        mask[:, j] = active
        alive, x = alive & (chosen != EOS), chosen
    ran = int(mask.any(0).sum())
    return tokens[:, :ran], lists[:, :ran], target[:, :ran], mask[:, :ran], torch.stack(a_states[:ran])


@torch.no_grad()
def test_simulate_steps_only_live_rows_with_the_same_samples() -> None:
    """Stepping only the live rows (and drawing the noise for all rows) reproduces the every-row reference."""
    user, agent, _ = _nets()
    first = torch.full((30,), GO, dtype=torch.long)
    budget = torch.arange(30) % 7 + 1  # rows spend their budgets at different steps
    h0 = torch.randn(1, 30, 12, generator=torch.Generator().manual_seed(1))
    state = (h0, torch.zeros_like(h0))
    sim = simulate(agent, user, first, budget, 10, torch.Generator().manual_seed(3), state, state, record_states=True)
    want = _simulate_every_row(agent, user, first, budget, 10, torch.Generator().manual_seed(3), state, state)
    assert sim.mask.sum(1).tolist() != budget.tolist()  # some rows left before their budget ran out
    for got, ref in zip((sim.tokens, sim.lists, sim.target, sim.mask), want[:4], strict=True):
        assert torch.equal(got, ref)
    # Recorded states match the reference at every step a row was live (the only ones rollouts start from).
    live = sim.mask.T  # (J, R)
    assert torch.allclose(sim.agent_states[0][:, 0][live], want[4][:, 0][live], atol=1e-6)


@torch.no_grad()
def test_discriminator_probs_keep_the_session_order(offline: SessionBatch) -> None:
    _, _, disc = _nets()
    batch = offline.select(np.arange(40))
    one_by_one = torch.cat([torch.sigmoid(disc(*_d_inputs(batch.select([i])))) for i in range(40)])
    assert torch.allclose(discriminator_probs(disc, batch), one_by_one, atol=1e-6)


def _d_inputs(b: SessionBatch) -> tuple[torch.Tensor, ...]:
    return b.tokens, b.lists, b.target, b.mask


# ----------------------------------------------------------------------------------------------- learner surface


@pytest.fixture(scope="module")
def trained(logs: SessionLogs) -> IRecGAN:
    return IRecGAN(logs, method="IRecGAN", seed=11, **TINY).learn()


def test_learn_schedule_and_curves(trained: IRecGAN, logs: SessionLogs) -> None:
    assert trained.pretrained and trained.rounds_done == 1
    nets = [row["net"] for row in trained.curves]
    # pre-training 2 A + 2 U + 1 D epochs; round: 2 blocks x (1 g-step + q_D-weighted U + MLE U) + 1 D epoch
    assert nets.count("agent") == 2 + 2 and nets.count("user") == 2 + 2 and nets.count("user_adv") == 2
    assert nets.count("disc") == 1 + 1 and nets.count("generated") == 2
    gen_rows = [row for row in trained.curves if row["net"] == "generated"]
    assert all(row["n"] == trained.n_generated_per_step == round(0.25 * trained.n_offline) for row in gen_rows)
    assert all(0.0 < row["mean_qd"] < 1.0 for row in gen_rows)
    assert trained.max_len == 2 * int(trained.offline.lengths.float().mean())


def test_predict_single_batched_and_online_evaluation(trained: IRecGAN, mdp: SyntheticMDP) -> None:
    env = SyntheticMDPVectorEnv(num_envs=5)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.tile(np.arange(10), (5, 1)))
    slates, state = trained.predict(obs)
    assert state is None and slates.shape == (5, 10) and slates.dtype == np.int64
    assert all(len(set(s)) == 10 for s in slates.tolist()) and ((slates >= 0) & (slates < 50)).all()
    single = {"history": obs["history"][0], "length": obs["length"][0]}
    one, _ = trained.predict(single, deterministic=True)
    assert one.shape == (10,)
    assert one.tolist() == trained.predict(single, deterministic=True)[0].tolist()
    for name in ("IRecGAN", "LSTMD"):  # agent and user deployment through the same entry points
        model = trained.branch(name)
        ev = evaluate_online(model, 20, seed=1, mdp=mdp)  # SB3-style predict path
        assert ev.n_nonzero == 20 and ev.coverage.shape == (10,)
        a = model.evaluate(20, seed=4)  # as_policy path: noise from the evaluation seed
        b = model.evaluate(20, seed=4)
        assert np.array_equal(a.coverage, b.coverage) and a.reward_nonzero == b.reward_nonzero
    with pytest.raises(ValueError):
        trained.predict({"history": np.full((2, 40), 60), "length": np.array([3, 3])})


def test_methods_share_training_modes_and_skip_what_they_lack(logs: SessionLogs) -> None:
    assert {m: s.deploy for m, s in METHODS.items()} == {
        "IRecGAN": "agent", "LSTMD": "user", "PGU": "agent", "PG": "agent", "LSTM": "user",
    }  # fmt: skip
    base = IRecGAN(logs, method="PG", seed=2, **TINY).pretrain()
    disc_before = [p.clone() for p in base.disc.parameters()]
    pg = base.branch("PG").learn(1)
    pgu = base.branch("PGU").learn(1)
    for model in (pg, pgu):  # no discriminator in these modes: D is never updated, U gets no weighted epoch
        assert all(torch.equal(a, b) for a, b in zip(disc_before, model.disc.parameters(), strict=True))
        assert not any(row["net"] == "user_adv" for row in model.curves)
    assert not any(row["net"] == "generated" for row in pg.curves)
    assert any(row["net"] == "generated" for row in pgu.curves)
    lstm = pg.branch("LSTM")
    assert lstm.deployed is lstm.user and pg.deployed is pg.agent
    with pytest.raises(ValueError, match="mode"):
        pg.branch("IRecGAN")
    with pytest.raises(ValueError, match="unknown method"):
        IRecGAN(logs, method="DQN")


def test_validation_follows_both_networks_and_leaves_training_alone(logs: SessionLogs, tmp_path: Path) -> None:
    """Per round the curves validate A and, where the run trains one, the user-model method; training is unchanged."""
    on = IRecGAN(logs, method="IRecGAN", seed=3, **{**TINY, "n_rounds": 2, "eval_sessions": 10}).learn()
    off = IRecGAN(logs, method="IRecGAN", seed=3, **{**TINY, "n_rounds": 2}).learn()
    assert all(torch.equal(a, b) for a, b in zip(_params(on), _params(off), strict=True))
    assert [r for r in on.curves if r["net"] != "validation"] == off.curves
    val = [(r["round"], r["method"], r["deploy"]) for r in on.curves if r["net"] == "validation"]
    assert val == [(0, "IRecGAN", "agent"), (0, "LSTMD", "user")] + [
        (r, m, d) for r in (1, 2) for m, d in (("IRecGAN", "agent"), ("LSTMD", "user"))
    ]
    last_u = [r for r in on.curves if r["net"] == "validation" and r["method"] == "LSTMD"][-1]
    u_eval = on.branch("LSTMD").evaluate(10, seed=on.seed + on.VALIDATION_SEED_OFFSET)
    assert last_u["coverage"] == u_eval.coverage.tolist() and last_u["reward_nonzero"] == u_eval.reward_nonzero
    pgu = IRecGAN(logs, method="PGU", seed=3, **{**TINY, "eval_sessions": 10}).learn()
    assert [(r["round"], r["method"]) for r in pgu.curves if r["net"] == "validation"] == [
        (0, "PGU"), (0, "LSTM"), (1, "PGU"),
    ]  # fmt: skip
    on.plot_curves(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_save_load_round_trip(trained: IRecGAN, logs: SessionLogs, tmp_path: Path) -> None:
    path = tmp_path / "irecgan.zip"
    trained.save(path)
    loaded = IRecGAN.load(path)
    assert repr(loaded) == repr(trained) and loaded.curves == trained.curves
    assert all(torch.equal(a, b) for a, b in zip(_params(trained), _params(loaded), strict=True))
    obs = {"history": np.array([[4, 9] + [50] * 38]), "length": np.array([2])}
    assert np.array_equal(trained.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # Optimiser and RNG states travel too: one more round from the copy equals one more round from the original.
    again = IRecGAN.load(path, logs=logs).learn(1)
    original = trained.branch("IRecGAN").learn(1)
    assert all(torch.equal(a, b) for a, b in zip(_params(again), _params(original), strict=True))
    with pytest.raises(RuntimeError, match="logs"):
        IRecGAN.load(path).learn(1)


def test_same_seed_same_result_other_seed_differs(logs: SessionLogs) -> None:
    cfg = {**TINY, "pretrain_agent_epochs": 1, "pretrain_user_epochs": 1}
    runs = [IRecGAN(logs, seed=s, **cfg).learn() for s in (7, 7, 8)]
    a, b, c = (_params(m) for m in runs)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert runs[0].curves == runs[1].curves
    obs = {"history": np.full((3, 40), 50), "length": np.zeros(3, dtype=np.int64)}
    assert np.array_equal(runs[0].predict(obs)[0], runs[1].predict(obs)[0])


def test_config_validation_and_cpu_yaml(logs: SessionLogs) -> None:
    with pytest.raises(ValueError, match="unknown IRecGAN hyperparameters"):
        IRecGAN(logs, hidden=3)
    with pytest.raises(ValueError, match="gamma"):
        IRecGANConfig(gamma=0.0)
    with pytest.raises(ValueError, match="n_items"):
        IRecGAN(None)
    yaml = pytest.importorskip("yaml")
    blocks = yaml.safe_load((REPO / "agents" / "irecgan.yml").read_text())
    defaults = IRecGANConfig()
    assert IRecGANConfig.from_dict(blocks["default"]) == defaults
    assert IRecGANConfig.from_dict(blocks["SyntheticMDP-v0"]) == IRecGANConfig.from_dict(CPU_CONFIG)


# -------------------------------------------------------------------------------------------------- CLI, example


def _tiny_set_args() -> list[str]:
    out: list[str] = []
    for key, value in {**TINY, "eval_sessions": 10}.items():
        out += ["--set", f"{key}={value}"]
    return out


def test_results_table_shows_sd_only_over_several_seeds() -> None:
    from recsim_gym.agents.irecgan.experiment import markdown_table, summarize

    def run(seed: int, sessions: int, cov: float) -> dict[str, Any]:
        return dict(logging="mix", sessions=sessions, method="PG", seed=seed, coverage=[cov] * 10,
                    reward_nonzero=3.0 + cov, reward_all=2.0 + cov)  # fmt: skip

    table = markdown_table(summarize([run(0, 200, 0.2), run(1, 200, 0.4), run(0, 10_000, 0.3)]))
    two, one = table.splitlines()[2:]
    assert two.startswith("| mix | 200 | PG | 0.300 ± 0.141 |") and two.endswith("| 2 |")
    assert one.startswith("| mix | 10,000 | PG | 0.300 | 0.300 |") and "±" not in one
    assert one.endswith("| 3.30 | 2.30 | 1 |")


def test_cli_experiment_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recsim_gym.cli import main

    out = tmp_path / "run"
    argv = ["irecgan-experiment", "--sessions", "24", "--seeds", "1", "--eval-sessions", "15", "--quiet", "--curves"]
    argv += ["--out", str(out), *_tiny_set_args()]
    assert main(argv) == 0
    data = json.loads((out / "results.json").read_text())
    methods = sorted(r["method"] for r in data["runs"])
    assert methods == sorted(["logging", "LSTM", "LSTMD", "PG", "PGU", "IRecGAN"])
    assert all(len(r["coverage"]) == 10 and r["eval_sessions"] >= 15 for r in data["runs"])
    assert (out / "figure2.png").stat().st_size > 0 and len(list((out / "curves").glob("*.png"))) == 3
    assert "IRecGAN" in (out / "results.md").read_text() and "coverage@7" in (out / "results.md").read_text()
    report = ["irecgan-experiment", "--report-only", "--out", str(out), "--sessions", "24", "--eval-sessions", "15"]
    assert main([*report, "--seeds", "1", *_tiny_set_args()]) == 0
    assert "cells with results: [('mix', 24)]" in capsys.readouterr().out
    # Rerunning skips what is done; another configuration in the same folder is refused.
    assert main(argv) == 0 and "skip mix-24 seed 0" in capsys.readouterr().out
    assert main([*argv, "--set", "hidden_size=13"]) == 2
    assert main(["irecgan-experiment", "--set", "nope=1", "--out", str(out)]) == 2
    assert "unknown IRecGAN hyperparameters" in capsys.readouterr().err


def test_example_script_tiny(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "irecgan_synthetic.py"), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IRecGAN" in proc.stdout and (tmp_path / "figure2.png").exists()


def test_run_seed_resumes_from_checkpoints_with_the_same_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted run_seed continues from its checkpoints (mid-branch) and gives an uninterrupted run's rows."""
    from recsim_gym.agents.irecgan.experiment import ResultsFile, run_cell, run_seed

    config = IRecGANConfig.from_dict({**TINY, "n_rounds": 2, "eval_sessions": 10})
    args = ("mix", 24, 0, config, 15)
    reference = run_seed(*args)

    calls = {"n": 0}
    original = IRecGAN._round

    def interrupted(self: IRecGAN) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # PG's two rounds are done and evaluated; PGU stops after its first round
            raise KeyboardInterrupt
        original(self)

    folder = tmp_path / "ckpt"
    monkeypatch.setattr(IRecGAN, "_round", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_seed(*args, checkpoint_dir=folder)
    monkeypatch.setattr(IRecGAN, "_round", original)
    progress = json.loads((folder / "progress.json").read_text())
    assert sorted(progress["branches"]) == ["PG"] and (folder / "PGU.zip").exists() and (folder / "base.zip").exists()
    assert IRecGAN.load(folder / "PGU.zip").rounds_done == 1
    # A copy whose PGU checkpoint has a flipped byte: not resumed from, PGU trained again from the pre-trained model.
    damaged = tmp_path / "damaged"
    shutil.copytree(folder, damaged)
    data = bytearray((damaged / "PGU.zip").read_bytes())
    data[len(data) // 2] ^= 0x01
    (damaged / "PGU.zip").write_bytes(bytes(data))

    resumed = run_seed(*args, checkpoint_dir=folder)
    assert resumed["timing"]["resumed"] is True and reference["timing"]["resumed"] is False

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]

    assert strip(resumed["rows"]) == strip(reference["rows"])
    messages: list[str] = []
    retrained = run_seed(*args, checkpoint_dir=damaged, report=messages.append)
    assert len(messages) == 1 and "rejected checkpoint" in messages[0] and str(damaged / "PGU.zip") in messages[0]
    assert strip(retrained["rows"]) == strip(reference["rows"])
    # run_cell resumes from <root>/<cell>_seed<seed> and removes the folder once the seed is saved.
    root = tmp_path / "root"
    root.mkdir()
    folder.rename(root / "mix-24_seed0")
    lines: list[str] = []
    results = ResultsFile(tmp_path / "results.json", {"config": {}, "n_rounds": 2, "eval_sessions": 15})
    run_cell([("mix", 24)], [0], config, results, 15, report=lines.append, checkpoint_root=root)
    assert lines[0].startswith("resume mix-24 seed 0") and not (root / "mix-24_seed0").exists()
    assert strip(results.data["runs"]) == strip(reference["rows"])


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl locks")
def test_run_cell_skips_a_seed_another_process_holds_and_merges_results(tmp_path: Path) -> None:
    """Two workers on one output folder: a claimed (cell, seed) is skipped and both workers' results are kept."""
    import fcntl

    from recsim_gym.agents.irecgan.experiment import ResultsFile, run_cell

    config = IRecGANConfig.from_dict({**TINY, "n_rounds": 1, "eval_sessions": 10})
    meta = {"config": {}, "n_rounds": 1, "eval_sessions": 10}
    root, path = tmp_path / "checkpoints", tmp_path / "results.json"
    root.mkdir()
    other = ResultsFile(path, meta)  # the other worker, opened before this one writes anything
    lines: list[str] = []
    with open(root / "mix-24_seed0.lock", "a") as held:  # the other worker is running seed 0
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        results = run_cell([("mix", 24)], [0, 1], config, ResultsFile(path, meta), 10, report=lines.append,
                           checkpoint_root=root)  # fmt: skip
        assert lines[0].startswith("skip mix-24 seed 0: another process is running it")
        assert [t["seed"] for t in results.data["timings"]] == [1]
        assert not (root / "mix-24_seed1.lock").exists() and not (root / "mix-24_seed1").exists()
        # The other worker finishes seed 0: its stale in-memory copy does not drop seed 1 from the file.
        timing = {"logging": "mix", "sessions": 24, "seed": 0}
        other.add({"rows": [{**timing, "method": "PG"}], "timing": timing})
    saved = json.loads(path.read_text())
    assert sorted(t["seed"] for t in saved["timings"]) == [0, 1]
    assert {(r["seed"], r["method"]) for r in saved["runs"]} >= {(0, "PG"), (1, "IRecGAN"), (1, "LSTM")}
    with pytest.raises(ValueError, match="already holds mix-24 seed 0"):
        other.add({"rows": [], "timing": timing})
    lines.clear()
    run_cell([("mix", 24)], [0, 1], config, ResultsFile(path, meta), 10, report=lines.append, checkpoint_root=root)
    assert all(line.startswith("skip") and "already in" in line for line in lines) and len(lines) == 2
