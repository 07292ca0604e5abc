"""Fitting each simulator family on a world's logs (protocol step 2), with the package's own training code.

* ``gan-pw``: the GAN user model with the position-weight encoder and the Shannon-entropy regulariser
  (:func:`recsim_gym.user_models.training.train_user_model`, default :class:`TrainConfig`: 2,000 Adam steps of 128
  users, the ``best-loss`` checkpoint), on the logs exported to the Chen et al. schema with the leaving step as a
  no-click event; users (= sessions) split 80 % fit / 20 % checkpoint selection.
* ``gan-lstm``: the same with the LSTM encoder (``UserModelConfig(encoder="lstm")``: an LSTM of 20 units over the
  whole click history), the same data and training.
* ``gan-pw-l2``: the min-max (L2) GAN user model (:func:`recsim_gym.user_models.adversarial.train_adversarial`,
  default :class:`AdversarialConfig`: ``phi`` a copy of the reward network, one step of each player per iteration,
  batches of 100 users) started from the ``best-pre1`` checkpoint of the ``gan-pw`` fit above, for 1,000 iterations
  as the shipped ``gan-pw-*-l2`` bundles (``envs/gan_user/configs``); ``phi``'s ``best-pre1`` checkpoint. Its
  leaving comes from the entropy model it started from (:class:`~recsim_gym.fidelity.users.L2GANUser`).
* ``recsimu``: RecSimu (:func:`recsim_gym.user_models.recsimu.training.train_recsimu`, default
  :class:`RecSimuTrainConfig`: 100 + 100 pre-training steps, 150 rounds, the best validation round) on the logs
  exported as ``recsimu-truth`` does (each display a page, the failing last display a page of negatives; RecSimu's own
  data path, protocol ``users``, ``N`` chosen from the data), users split 80 % fit / 20 % validation.
* ``irecgan-u``: IRecGAN's user model U (:class:`recsim_gym.agents.irecgan.IRecGAN`, the CPU configuration: a
  2-layer LSTM of 64 units, 50 maximum-likelihood epochs, the learning-rate decay of the code), on every logged
  session, **zero-click sessions included** (IRecGAN drops them by default, which would teach U that nobody leaves
  at the first step); A and D are not trained (U's pre-training does not use them).
* ``world``: no fit; the world itself, the reference row (its figures equal the world's up to Monte-Carlo noise).

``fit_simulator`` returns a :mod:`recsim_gym.fidelity.users` user. ``budget`` scales the training length (1.0 = the
defaults above; tests use tiny budgets).
"""

from __future__ import annotations

from typing import Any

from recsim_gym.data.logs import load_logs
from recsim_gym.envs.synthetic_mdp.logs import SessionLogs
from recsim_gym.fidelity.gan_world import GANWorld
from recsim_gym.fidelity.users import GANUser, IRecGANUser, L2GANUser, RecSimuUser
from recsim_gym.fidelity.worlds import World

__all__ = ["SIMULATORS", "fit_simulator"]

#: The simulator families the protocol fits, in table order.
SIMULATORS = ("world", "gan-pw", "gan-lstm", "gan-pw-l2", "irecgan-u", "recsimu")

#: Users of a fit split as the GAN families use it: 80 % fit (``train``), 20 % checkpoint selection (``val``).
FIT_SPLIT = (0.8, 0.2, 0.0)
#: Min-max iterations of the shipped ``-l2`` bundles (``envs/gan_user/configs/*.yaml``), scaled by ``budget``.
L2_ITERATIONS = 1000


def fit_simulator(
    name: str, world: World | GANWorld, logs: SessionLogs, seed: int, budget: float = 1.0
) -> tuple[Any, dict]:
    """Fit simulator ``name`` on ``logs``; returns ``(user, info)`` (``info``: what was trained, for the cell file).

    Raises:
        ValueError: an unknown simulator name.
    """
    if name == "world":
        return world.user(), {}
    if name in ("gan-pw", "gan-lstm"):
        model, info = _fit_gan(world, logs, seed, budget, name.split("-")[1])
        return GANUser(model), info
    if name == "gan-pw-l2":
        return _fit_gan_l2(world, logs, seed, budget)
    if name == "recsimu":
        return _fit_recsimu(world, logs, seed, budget)
    if name == "irecgan-u":
        return _fit_irecgan_u(world, logs, seed, budget)
    raise ValueError(f"unknown simulator {name!r}; choose from {list(SIMULATORS)}")


def _fit_gan(
    world: World | GANWorld, logs: SessionLogs, seed: int, budget: float, encoder: str, checkpoint: str = "best-loss"
):
    """A Shannon-entropy GAN user model and its info; ``checkpoint``: the one loaded (``best-loss`` by default)."""
    from recsim_gym.user_models.gan_user_model import UserModelConfig
    from recsim_gym.user_models.training import TrainConfig, train_user_model

    data = load_logs(logs.to_chen_log(seed=seed, split=FIT_SPLIT))
    train = TrainConfig(seed=seed)
    train.iterations = max(1, int(round(train.iterations * budget)))
    train.eval_every = min(train.eval_every, train.iterations)
    config = UserModelConfig(n_items=world.n_items, encoder=encoder)
    model, result = train_user_model(data, config, train, False)
    if checkpoint != "best-loss":
        model.load_state_dict(result.checkpoints[checkpoint])
    info = {"iterations": train.iterations, "best_iteration": result.best_iteration[checkpoint]}
    return model.eval(), info


def _fit_gan_l2(world: World | GANWorld, logs: SessionLogs, seed: int, budget: float) -> tuple[L2GANUser, dict]:
    from recsim_gym.user_models.adversarial import AdversarialConfig, train_adversarial

    # The min-max starts from the entropy fit's best-pre1 checkpoint, as --init-checkpoint's default (the code's).
    reward, info = _fit_gan(world, logs, seed, budget, "pw", checkpoint="best-pre1")
    config = AdversarialConfig(seed=seed)
    config.iterations = max(1, int(round(L2_ITERATIONS * budget)))
    config.eval_every = min(config.eval_every, config.iterations)
    data = load_logs(logs.to_chen_log(seed=seed, split=FIT_SPLIT))
    model, result = train_adversarial(data, reward, config, progress=False)
    info.update(l2_iterations=config.iterations, l2_best_iteration=result.best_iteration["best-pre1"])
    return L2GANUser(model, reward), info


def _fit_recsimu(world: World | GANWorld, logs: SessionLogs, seed: int, budget: float) -> tuple[RecSimuUser, dict]:
    from recsim_gym.user_models.recsimu.experiments import prepare
    from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig, train_recsimu

    data = load_logs(logs.to_chen_log(seed=seed, split=FIT_SPLIT, include_failed_display=True))
    prep = prepare(data, protocol="users", fit_split="train", data_seed=seed)
    d = RecSimuTrainConfig(seed=seed)
    scaled = {k: max(1, int(round(getattr(d, k) * budget))) for k in ("pretrain_g", "pretrain_d", "rounds")}
    config = RecSimuTrainConfig(seed=seed, eval_every=min(d.eval_every, scaled["rounds"]), **scaled)
    res = train_recsimu(prep.splits["train"], prep.splits["val"], prep.model_config(), prep.embeddings, config)
    _, disc = res.models()
    info = {**scaled, "best_round": res.best_round, "history_len": prep.history_len, "upsample": res.upsample}
    return RecSimuUser(disc, prep.history_len, res.upsample, world.n_items), info


def _fit_irecgan_u(world: World | GANWorld, logs: SessionLogs, seed: int, budget: float) -> tuple[IRecGANUser, dict]:
    from recsim_gym.agents.irecgan import CPU_CONFIG, IRecGAN
    from recsim_gym.agents.irecgan.rollouts import sessions_from_logs

    epochs = max(1, int(round(50 * budget)))
    model = IRecGAN(
        sessions_from_logs(logs, min_clicks=0),
        method="LSTM",
        config=dict(CPU_CONFIG),
        seed=seed,
        n_items=world.n_items,
        slate_size=world.slate_size,
        pretrain_agent_epochs=0,
        pretrain_user_epochs=epochs,
        pretrain_generated=0,
        pretrain_disc_epochs=0,
        eval_sessions=0,
    )
    model.pretrain()
    return IRecGANUser(model.user), {"user_epochs": epochs}
