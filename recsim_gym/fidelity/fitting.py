"""Fitting each simulator family on a world's logs (protocol step 2), with the package's own training code.

* ``gan-pw``: the GAN user model with the position-weight encoder and the Shannon-entropy regulariser
  (:func:`recsim_gym.user_models.training.train_user_model`, default :class:`TrainConfig`: 2,000 Adam steps of 128
  users, the ``best-loss`` checkpoint), on the logs exported to the Chen et al. schema with the leaving step as a
  no-click event; users (= sessions) split 80 % fit / 20 % checkpoint selection.
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
from recsim_gym.fidelity.users import GANUser, IRecGANUser, WorldUser
from recsim_gym.fidelity.worlds import World

__all__ = ["SIMULATORS", "fit_simulator"]

#: The simulator families the protocol fits, in table order.
SIMULATORS = ("world", "gan-pw", "irecgan-u")


def fit_simulator(name: str, world: World, logs: SessionLogs, seed: int, budget: float = 1.0) -> tuple[Any, dict]:
    """Fit simulator ``name`` on ``logs``; returns ``(user, info)`` (``info``: what was trained, for the cell file).

    Raises:
        ValueError: an unknown simulator name.
    """
    if name == "world":
        return WorldUser(world.mdp), {}
    if name == "gan-pw":
        return _fit_gan(world, logs, seed, budget)
    if name == "irecgan-u":
        return _fit_irecgan_u(world, logs, seed, budget)
    raise ValueError(f"unknown simulator {name!r}; choose from {list(SIMULATORS)}")


def _fit_gan(world: World, logs: SessionLogs, seed: int, budget: float) -> tuple[GANUser, dict]:
    from recsim_gym.user_models.gan_user_model import UserModelConfig
    from recsim_gym.user_models.training import TrainConfig, train_user_model

    data = load_logs(logs.to_chen_log(seed=seed, split=(0.8, 0.2, 0.0)))
    train = TrainConfig(seed=seed)
    train.iterations = max(1, int(round(train.iterations * budget)))
    train.eval_every = min(train.eval_every, train.iterations)
    model, result = train_user_model(data, UserModelConfig(n_items=world.mdp.n_items, encoder="pw"), train, False)
    info = {"iterations": train.iterations, "best_iteration": result.best_iteration["best-loss"]}
    return GANUser(model), info


def _fit_irecgan_u(world: World, logs: SessionLogs, seed: int, budget: float) -> tuple[IRecGANUser, dict]:
    from recsim_gym.agents.irecgan import CPU_CONFIG, IRecGAN
    from recsim_gym.agents.irecgan.rollouts import sessions_from_logs

    epochs = max(1, int(round(50 * budget)))
    model = IRecGAN(
        sessions_from_logs(logs, min_clicks=0),
        method="LSTM",
        config=dict(CPU_CONFIG),
        seed=seed,
        n_items=world.mdp.n_items,
        slate_size=world.slate_size,
        pretrain_agent_epochs=0,
        pretrain_user_epochs=epochs,
        pretrain_generated=0,
        pretrain_disc_epochs=0,
        eval_sessions=0,
    )
    model.pretrain()
    return IRecGANUser(model.user), {"user_epochs": epochs}
