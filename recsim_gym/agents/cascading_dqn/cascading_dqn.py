"""The cascading DQN of Chen et al. (ICML 2019, §5) as an SB3 off-policy algorithm, and its additive twin (GDQN).

No public implementation of the cascading DQN exists; this one follows the paper where it is specific and says
where it is not (``docs/cdqn.md``). One training step:

1. sample a batch ``(s, A, r, s', done)`` from the replay buffer (SB3's ``DictReplayBuffer``; a time-limit end
   bootstraps, a real end does not);
2. run the cascade (Algorithm 1) at ``s'`` with the *target* networks: ``a*_j = argmax Q_j(s', a*_{1:j-1}, a)`` over
   allowed, not yet chosen entries; the target is ``y = r + gamma * Q_k(s', a*_{1:k})`` (Eq. 11);
3. regress *every* ``Q_j(s, a_{1:j})`` on that same ``y``: loss ``mean_batch sum_j (y - Q_j)^2`` (Eq. 11), which
   softly enforces the consistency ``Q_j(s, a*_{1:j}) = Q_k(s, a*_{1:k})`` (Eq. 10; see
   :mod:`recsim_gym.agents.consistency` for the paper's Figure 5 check).

Experience comes from any SB3 ``VecEnv``; :func:`make_slate_vec_env` builds the natively batched env (``B`` users per
step, one torch forward) behind :class:`~recsim_gym.sb3_vec_env.SB3VecEnv`, and the cascade then picks the ``B``
slates in one batched pass too.

``save`` / ``load`` keep Stable-Baselines3's call surface but write a zip that holds no code (JSON and weights-only
tensors with a sha256 manifest, :mod:`recsim_gym.agents.files`); an SB3 zip, whose ``data`` member is unpickled on
load, is refused unless ``allow_pickle=True``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule, TrainFreq
from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule, check_for_correct_spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

from recsim_gym.agents.cascading_dqn.clicked import CLICKED_KEY, ClickedIdsVecEnv, needs_clicked, with_clicked
from recsim_gym.agents.cascading_dqn.policies import AdditiveQPolicy, CascadingQPolicy, SlateQPolicy
from recsim_gym.agents.files import (
    SB3_PICKLE,
    AgentFileError,
    foreign_file_reason,
    read_archive,
    space_from_json,
    space_to_json,
    write_archive,
)
from recsim_gym.agents.guards import MISSING_ACTION_MASKS, MISSING_MASK
from recsim_gym.agents.sb3_logging import without_log_folder
from recsim_gym.threads import uses_cpu_threads

__all__ = [
    "AdditiveDQN",
    "CascadingDQN",
    "make_slate_vec_env",
    "random_slates",
    "random_slates_excluding",
    "random_unmasked_slates",
]

SelfCascadingDQN = TypeVar("SelfCascadingDQN", bound="CascadingDQN")


def make_slate_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vector_wrapper: Any = None,
    wrapper: Any = None,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` users of ``env_id``, batched natively when the id has a vector entry point.

    Args:
        env_id: a registered id (``"GANUser-Yelp-v0"``, ``"SyntheticMDP-v0"``, ...).
        n_envs: number of users simulated per step.
        seed: seed of the first reset (slot ``i`` gets ``seed + i``); None leaves the env unseeded.
        env_kwargs: constructor arguments of the env (``user_model``, ``slate_size``, ...).
        vector_wrapper: callable applied to the Gymnasium vector env (e.g. :class:`~recsim_gym.agents.baselines.
            ClickRewardVector` for GAN-RWD1).
        wrapper: callable applied to each single env when the id has no vector entry point (or ``n_envs == 1`` and
            ``vector_wrapper`` is None: the plain single env path, for the batched-vs-single comparison).

    Returns:
        a ``VecMonitor``-wrapped SB3 ``VecEnv`` (episode returns land in ``info["episode"]``).
    """
    import recsim_gym  # noqa: F401  (registers the ids)
    from recsim_gym.sb3_vec_env import SB3VecEnv

    kwargs = dict(env_kwargs or {})
    spec = gym.spec(env_id)
    venv: VecEnv
    if spec.vector_entry_point is not None and (n_envs > 1 or vector_wrapper is not None):
        vec = gym.make_vec(
            env_id, num_envs=n_envs, vectorization_mode="vector_entry_point", autoreset_mode="same_step", **kwargs
        )
        if vector_wrapper is not None:
            vec = vector_wrapper(vec)
        venv = SB3VecEnv(vec, info_keys=())
    else:

        def _thunk() -> gym.Env[Any, Any]:
            env = gym.make(env_id, **kwargs)
            return wrapper(env) if wrapper is not None else env

        venv = DummyVecEnv([_thunk] * n_envs)
    if seed is not None:
        venv.seed(seed)
    return VecMonitor(venv)


def random_slates(allowed: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, k)`` uniformly random slates of distinct allowed entries (``allowed`` ``(B, n)`` bool).

    One uniform key per entry, disallowed entries pushed below every key, then the ``k`` largest: a uniform sample
    without replacement in ``O(B n)``.
    """
    keys = rng.random(allowed.shape)
    keys[~allowed] = -1.0
    return np.argpartition(-keys, k - 1, axis=1)[:, :k].astype(np.int64)


# Above this many B x n keys, unmasked random slates are drawn by rejection instead (O(B k), not O(B n)); below, the
# key draw above is kept so that seeded runs on today's catalogues keep their exact random stream.
_DENSE_RANDOM_KEYS = 1 << 24


def random_unmasked_slates(batch: int, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(batch, k)`` uniformly random slates of distinct entries among ``n``, all allowed.

    For small ``batch x n`` this is :func:`random_slates` on an all-True mask; for a large catalogue ``k`` ids per row
    are drawn and the rows holding a repeat drawn again (rejection keeps the sample uniform over slates without
    repeats, and with ``k << n`` a repeat is rare), so no ``batch x n`` array is built.
    """
    if batch * n <= _DENSE_RANDOM_KEYS or k * 4 > n:
        return random_slates(np.ones((batch, n), dtype=bool), k, rng)
    out = rng.integers(0, n, size=(batch, k), dtype=np.int64)
    while True:
        ordered = np.sort(out, axis=1)
        bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if bad.size == 0:
            return out
        out[bad] = rng.integers(0, n, size=(bad.size, k), dtype=np.int64)


def random_slates_excluding(clicked: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, k)`` uniformly random slates of distinct entries among ``n`` that avoid each row's ``clicked`` ids
    ``(B, w)`` (padded with ``n``): :func:`random_slates` on the mask they define for small ``B x n``, otherwise
    :func:`random_unmasked_slates` with the rows that hit a clicked id drawn again (no ``B x n`` array)."""
    batch = clicked.shape[0]
    if batch * n <= _DENSE_RANDOM_KEYS or k * 4 > n:
        allowed = np.ones((batch, n + 1), dtype=bool)
        np.put_along_axis(allowed, clicked, False, axis=1)
        return random_slates(allowed[:, :n], k, rng)
    out = random_unmasked_slates(batch, n, k, rng)
    while True:
        bad = np.flatnonzero((out[:, :, None] == clicked[:, None, :]).any(axis=(1, 2)))
        if bad.size == 0:
            return out
        out[bad] = random_unmasked_slates(bad.size, n, k, rng)


def _allowed_of(
    observation: dict[str, np.ndarray], n: int, batch: int, mask_required: bool = False
) -> np.ndarray | None:
    """``(batch, n)`` bool mask of the observation, or None when it has none (every entry allowed)."""
    mask = observation.get("candidate_mask")
    if mask is None:
        if mask_required:
            raise ValueError(MISSING_MASK)
        return None
    return np.asarray(mask).reshape(batch, n) > 0


def _has_rich() -> bool:
    import importlib.util

    return importlib.util.find_spec("rich") is not None and importlib.util.find_spec("tqdm") is not None


class CascadingDQN(OffPolicyAlgorithm):
    """Cascading Deep Q-Networks (Chen, Li, Li, Song, Song; "Generative Adversarial User Model for Reinforcement
    Learning Based Recommendation System", ICML 2019, §5, Eqs. 8-11, Algorithm 1).

    A slate of ``k`` distinct items is chosen by ``k`` Q-functions ``Q_j(s, a*_1..a*_{j-1}, a_j)`` on a shared
    state embedding (Eq. 9; :class:`~recsim_gym.agents.cascading_dqn.policies.CascadingQNetwork`), applied in
    cascade: position ``j`` takes the best entry given the ``j - 1`` already chosen, among the entries that are
    allowed (``observation["candidate_mask"]``) and not chosen yet, so a slate never repeats an item. All ``Q_j``
    regress on the same target ``y = r + gamma Q_k(s', a*_{1:k})`` (Eq. 11), with experience replay and epsilon-greedy
    exploration (§5.2), and a target network.

    Where the defaults come from: the paper gives the architecture (Eq. 9), the shared PW state embedding (Eq. 4),
    the loss and target (Eq. 11), replay and epsilon-greedy exploration. Everything else is unspecified in the paper
    and chosen here: Adam, learning rate 1e-3, batch 128, buffer 50,000, gamma 0.9, a hard target copy every 1,000
    transitions, epsilon annealed 1 -> 0.05 over the first 20% of training (a whole random slate, not per position),
    squared loss (the paper's; no Huber), gradient-norm clip 10, hidden width 64, embedding width 64. Tuned values
    per env id are in ``agents/cascading_dqn.yml``.

    Args:
        policy: ``"MultiInputPolicy"`` (:class:`~recsim_gym.agents.cascading_dqn.policies.CascadingQPolicy`) or a
            policy class.
        env: an SB3 ``VecEnv`` / Gymnasium env, or an env id (built with :func:`make_slate_vec_env` with ``n_envs``
            users per step and ``env_kwargs``).
        learning_rate: Adam learning rate or schedule.
        buffer_size: replay capacity in transitions.
        learning_starts: transitions of random slates before learning starts.
        batch_size: transitions per gradient step.
        tau: soft-update coefficient of the target network (1 = hard copy).
        gamma: discount per slate step.
        train_freq: collect this many env steps (``n_envs`` transitions each) between training phases.
        gradient_steps: gradient steps per training phase.
        target_update_interval: transitions between target updates.
        exploration_fraction: fraction of training over which epsilon is annealed.
        exploration_initial_eps: epsilon at the start.
        exploration_final_eps: epsilon after the annealing.
        max_grad_norm: gradient-norm clip.
        double_q: select the cascade at ``s'`` with the online networks and value it with the target ones (van
            Hasselt et al. 2016); False (the paper's Eq. 11) uses the target networks for both.
        share_user_model_embedding: copy the state embedding and item features from the env's user model (the
            paper: "the same embedding for the state s as in Eq. (4)"); ignored for envs without one.
        freeze_embedding: keep that shared embedding fixed (True) or fine-tune it (False; the paper does not say).
        n_envs: users per step when ``env`` is an id.
        env_kwargs: env constructor arguments when ``env`` is an id.
        policy_kwargs: policy arguments (``hidden``, ``state_dim``, ``item_dim``, ``n_weights``, ``init_std``...).
        stats_window_size, tensorboard_log, verbose, seed, device: as in SB3.
        _init_setup_model: build the networks now (SB3's convention; ``load`` passes False).
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": CascadingQPolicy}
    policy: SlateQPolicy

    def __init__(
        self,
        policy: str | type[SlateQPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 50_000,
        learning_starts: int = 1_000,
        batch_size: int = 128,
        tau: float = 1.0,
        gamma: float = 0.9,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        target_update_interval: int = 1_000,
        exploration_fraction: float = 0.2,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10.0,
        double_q: bool = False,
        share_user_model_embedding: bool = True,
        freeze_embedding: bool = False,
        n_envs: int = 1,
        env_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if isinstance(env, str):
            env = make_slate_vec_env(env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,
            batch_size,
            tau,
            gamma,
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=DictReplayBuffer,
            policy_kwargs=dict(policy_kwargs or {}),  # a copy: _setup_model fills in widths
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            supported_action_spaces=(spaces.MultiDiscrete,),
        )
        self.target_update_interval = target_update_interval
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.max_grad_norm = max_grad_norm
        self.double_q = double_q
        self.share_user_model_embedding = share_user_model_embedding
        self.freeze_embedding = freeze_embedding
        self.exploration_rate = exploration_initial_eps
        self._n_calls = 0
        if _init_setup_model:
            self._setup_model()

    # ----- setup ---------------------------------------------------------------------------------------------

    def _setup_model(self) -> None:
        model = self._env_user_model() if self.share_user_model_embedding and self.env is not None else None
        if model is not None:
            # The shared embedding fixes the widths: the user model's first layer and its number of PW vectors.
            self.policy_kwargs.setdefault("state_dim", int(model.config.hidden[0]))
            self.policy_kwargs.setdefault("item_dim", int(model.config.hidden[0]))
            self.policy_kwargs.setdefault("n_weights", int(model.config.pw_dim))
        super()._setup_model()
        self.q_net = self.policy.q_net
        self.q_net_target = self.policy.q_net_target
        self.exploration_schedule = LinearSchedule(
            self.exploration_initial_eps, self.exploration_final_eps, self.exploration_fraction
        )
        # Exploration draws come from their own generator so that they are reproducible under ``seed`` whatever
        # else touches numpy's global generator.
        self._explore_rng = np.random.default_rng(self.seed)
        self.layout = self.policy.layout
        if model is not None:
            self.q_net.encoder.load_user_model(model, freeze=self.freeze_embedding)
            self.policy.sync_target()
            self.policy.refresh_optimizer(self.lr_schedule(1))

    def _env_user_model(self) -> Any:
        """The env's GAN user model (a ``model`` attribute holding a ``GANUserModel``), or None."""
        from recsim_gym.user_models.gan_user_model import GANUserModel

        assert self.env is not None
        try:
            model = self.env.get_attr("model", [0])[0]
        except Exception:  # envs without a user model (SyntheticMDP) have no such attribute, whatever the wrapper
            return None
        return model if isinstance(model, GANUserModel) else None

    # ----- acting --------------------------------------------------------------------------------------------

    def _random_actions(self, observation: dict[str, np.ndarray], vectorized: bool) -> np.ndarray:
        n, k = int(self.layout["n"]), int(self.layout["k"])
        batch = next(iter(observation.values())).shape[0] if vectorized else 1
        obs = observation if vectorized else {key: np.asarray(v)[None] for key, v in observation.items()}
        if CLICKED_KEY in obs:
            slates = random_slates_excluding(np.asarray(obs[CLICKED_KEY]).reshape(batch, -1), n, k, self._explore_rng)
            return slates if vectorized else slates[0]
        mask_required = "candidate_mask" in getattr(self.observation_space, "spaces", {})
        allowed = _allowed_of(obs, n, batch, mask_required)
        if allowed is None:
            slates = random_unmasked_slates(batch, n, k, self._explore_rng)
        else:
            slates = random_slates(allowed, k, self._explore_rng)
        return slates if vectorized else slates[0]

    @uses_cpu_threads
    def predict(
        self,
        observation: dict[str, np.ndarray],  # type: ignore[override]
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Slates for one observation ``(k,)`` or a batch ``(B, k)``: the cascade, or with probability epsilon
        (``deterministic=False``) a uniformly random slate of allowed, distinct entries (drawn per row).

        ``action_masks``: the env's ``action_masks()`` (MaskablePPO's keyword, which
        :func:`recsim_gym.evaluation.evaluate` passes), needed on an env whose observation has no mask of the items
        that may be shown (``GANUser-*-v1`` without ``num_candidates``) when ``observation`` comes from the env
        itself rather than through the agent's own wrapper (which adds the ``clicked`` ids).

        Without them such an observation is acted on as if nothing had been clicked, with a warning (the env then
        repairs the slates that show a clicked item).
        """
        obs_spaces = getattr(self.observation_space, "spaces", {})
        if CLICKED_KEY in obs_spaces and CLICKED_KEY not in observation:
            n, width = int(self.layout["n"]), int(obs_spaces[CLICKED_KEY].nvec.shape[0])
            if action_masks is None:
                warnings.warn(MISSING_ACTION_MASKS, stacklevel=3)
                batch = np.asarray(observation["history"]).shape[:-1]
                observation = {**observation, CLICKED_KEY: np.full((*batch, width), n, dtype=np.int64)}  # none
            else:
                observation = with_clicked(observation, action_masks, n, width)
        action, state = self.policy.predict(observation, state, episode_start, deterministic)
        if not deterministic and self.exploration_rate > 0:
            vectorized = self.policy.is_vectorized_observation(observation)
            rand = self._random_actions(observation, vectorized)
            if vectorized:
                explore = self._explore_rng.random(action.shape[0]) < self.exploration_rate
                action = np.where(explore[:, None], rand, action)
            elif self._explore_rng.random() < self.exploration_rate:
                action = rand
        return action, state

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """SB3's wrapping, then :class:`~recsim_gym.agents.cascading_dqn.clicked.ClickedIdsVecEnv` on an env whose
        observation has no mask of the items that may be shown (``GANUser-*-v1`` without ``num_candidates``): the
        agent keeps the clicked ids in its own observation, so that neither its slates nor the cascade of its
        targets show a clicked item."""
        venv = OffPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)
        return ClickedIdsVecEnv(venv) if needs_clicked(venv) else venv

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Warm-up: random slates without repeats among allowed entries; afterwards epsilon-greedy cascade."""
        assert self._last_obs is not None
        if self.num_timesteps < learning_starts:
            action = self._random_actions(self._last_obs, vectorized=True)  # type: ignore[arg-type]
        else:
            action, _ = self.predict(self._last_obs, deterministic=False)  # type: ignore[arg-type]
        return action, action

    def _on_step(self) -> None:
        """Target update every ``target_update_interval`` transitions; epsilon from its schedule."""
        self._n_calls += 1
        if self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            if self.tau >= 1.0:
                self.policy.sync_target()
            else:
                with torch.no_grad():
                    for p, t in zip(self.q_net.parameters(), self.q_net_target.parameters(), strict=True):
                        t.mul_(1 - self.tau).add_(p, alpha=self.tau)
        self.exploration_rate = self.exploration_schedule(self._current_progress_remaining)
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    # ----- learning ------------------------------------------------------------------------------------------

    def _target_values(self, next_obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``Q_k(s', a*_{1:k})`` with the cascade-greedy slate ``a*`` at ``s'``: ``(B,)``."""
        if not self.double_q:
            return self.q_net_target.greedy(next_obs)[1]
        slate, _ = self.q_net.greedy(next_obs)
        preds = self.q_net_target.predictions(next_obs, slate)
        return preds[:, -1]

    def train(self, gradient_steps: int, batch_size: int = 128) -> None:
        """``gradient_steps`` steps of Eq. 11 on replay batches (see the module docstring)."""
        assert self.replay_buffer is not None
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, values = [], []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            with torch.no_grad():
                next_v = self._target_values(data.next_observations)  # type: ignore[arg-type]
                y = data.rewards.view(-1) + (1.0 - data.dones.view(-1)) * self.gamma * next_v
            preds = self.q_net.predictions(data.observations, data.actions.long())  # type: ignore[arg-type]
            # Sum over the Q_j (all fit the same y), mean over the batch: Eq. 11.
            loss = ((y.unsqueeze(1) - preds) ** 2).sum(dim=1).mean()
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q_net.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            losses.append(loss.item())
            values.append(float(preds[:, -1].detach().mean()))
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))
        self.logger.record("train/q_mean", float(np.mean(values)))

    @uses_cpu_threads
    def learn(
        self: SelfCascadingDQN,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | None = None,
        log_interval: int = 4,
        tb_log_name: str = "CascadingDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCascadingDQN:
        """Train for ``total_timesteps`` transitions (``n_envs`` per env step); SB3 callbacks and progress bar.

        ``progress_bar=True`` uses SB3's bar when ``rich`` is installed and a plain ``tqdm`` bar otherwise (SB3's
        own needs both): :class:`~recsim_gym.agents.progress.TrainingProgress`, the bar of ``recsim-gym compare``.
        """
        if progress_bar and not _has_rich():
            from recsim_gym.agents.progress import TrainingProgress

            bar = TrainingProgress()
            callback = [bar] if callback is None else [*(callback if isinstance(callback, list) else [callback]), bar]
            progress_bar = False
        without_log_folder(self)  # no empty tempdir/SB3-<date> folder per learn() (recsim_gym.agents.sb3_logging)
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    # ----- saving and loading ------------------------------------------------------------------------------

    # Used by ``allow_pickle=True`` loads of Stable-Baselines3 zips written by earlier versions.
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "q_net", "q_net_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def save(  # type: ignore[override]
        self,
        path: str | os.PathLike[str],
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> Path:
        """Save the agent as a code-free archive (:mod:`recsim_gym.agents.files`); ``.zip`` is added to a bare name.

        The archive holds the hyperparameters, the spaces, the counters and exploration generator in ``agent.json``,
        the online and target Q-networks in ``policy.pt`` and the optimizer state in ``optimizer.pt``, with a sha256
        manifest; it is written to a temporary file and moved into place. The replay buffer is not saved (as in
        Stable-Baselines3). A learning-rate schedule other than SB3's constant and linear ones is saved as its
        current value (with a warning).

        Args:
            path: the file; ``"run/model"`` writes ``run/model.zip``.
            exclude, include: Stable-Baselines3's attribute filters; not supported (the archive's contents are fixed).

        Returns:
            The path written.

        Raises:
            ValueError: ``exclude``/``include`` given, or a policy argument that cannot be stored in JSON.
        """
        if exclude or include:
            raise ValueError("exclude/include are not supported: a recsim-gym agent archive has fixed contents")
        out = Path(path)
        if out.suffix == "":
            out = out.with_name(out.name + ".zip")
        policy = self.policy
        frozen = [name for name, p in policy.q_net.named_parameters() if not p.requires_grad]
        agent = {
            "class": type(self).__name__,
            "policy": _policy_name(type(policy)),
            "hyperparameters": self._json_hyperparameters(),
            "spaces": {
                "observation": space_to_json(self.observation_space),
                "action": space_to_json(self.action_space),
            },
            "n_envs": int(self.n_envs),
            "state": {
                "num_timesteps": int(self.num_timesteps),
                "total_timesteps": int(self._total_timesteps),
                "num_timesteps_at_start": int(self._num_timesteps_at_start),
                "episode_num": int(self._episode_num),
                "n_updates": int(self._n_updates),
                "n_calls": int(self._n_calls),
                "exploration_rate": float(self.exploration_rate),
                "current_progress_remaining": float(self._current_progress_remaining),
                "explore_rng": self._explore_rng.bit_generator.state,
            },
            "frozen_parameters": frozen,
            "versions": _versions(),
        }
        state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
        return write_archive(
            out,
            type(self).__name__,
            {"agent.json": agent, "policy.pt": state, "optimizer.pt": policy.optimizer.state_dict()},
        )

    def _json_hyperparameters(self) -> dict[str, Any]:
        lr: Any = self.learning_rate
        if isinstance(lr, FloatSchedule):
            lr = lr.value_schedule
        if isinstance(lr, (int, float)):
            lr = float(lr)
        elif isinstance(lr, LinearSchedule):
            lr = {"linear": [float(lr.start), float(lr.end), float(lr.end_fraction)]}
        elif isinstance(lr, ConstantSchedule):
            lr = float(lr.val)
        else:
            lr = float(self.lr_schedule(self._current_progress_remaining))
            warnings.warn(
                f"learning-rate schedule {self.learning_rate!r} saved as its current value {lr:g}", stacklevel=3
            )
        policy_kwargs = dict(self.policy_kwargs)
        opt = policy_kwargs.get("optimizer_class")
        if opt is not None:
            if getattr(torch.optim, getattr(opt, "__name__", ""), None) is not opt:
                raise ValueError(f"optimizer_class {opt!r} cannot be saved: only classes of torch.optim are")
            policy_kwargs["optimizer_class"] = opt.__name__
        freq = self.train_freq
        return {
            "learning_rate": lr,
            "buffer_size": int(self.buffer_size),
            "learning_starts": int(self.learning_starts),
            "batch_size": int(self.batch_size),
            "tau": float(self.tau),
            "gamma": float(self.gamma),
            "train_freq": [int(freq.frequency), freq.unit.value] if isinstance(freq, TrainFreq) else freq,
            "gradient_steps": int(self.gradient_steps),
            "target_update_interval": int(self.target_update_interval),
            "exploration_fraction": float(self.exploration_fraction),
            "exploration_initial_eps": float(self.exploration_initial_eps),
            "exploration_final_eps": float(self.exploration_final_eps),
            "max_grad_norm": float(self.max_grad_norm),
            "double_q": bool(self.double_q),
            "share_user_model_embedding": bool(self.share_user_model_embedding),
            "freeze_embedding": bool(self.freeze_embedding),
            "policy_kwargs": policy_kwargs,
            "stats_window_size": int(self._stats_window_size),
            "tensorboard_log": self.tensorboard_log,
            "verbose": int(self.verbose),
            "seed": self.seed,
        }

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfCascadingDQN],
        path: str | os.PathLike[str],
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        allow_pickle: bool = False,
        **kwargs: Any,
    ) -> SelfCascadingDQN:
        """Load an agent written by :meth:`save`; it acts exactly as the saved one and can continue training.

        Args:
            path: the archive (``"run/model"`` finds ``run/model.zip``).
            env: the env to run on (its spaces must equal the saved ones); None to predict only.
            device: where the networks go.
            custom_objects, print_system_info: passed to Stable-Baselines3 for ``allow_pickle=True`` loads only.
            force_reset: ignored for archives (the env is always reset before training); SB3's meaning otherwise.
            allow_pickle: load a Stable-Baselines3 zip (pickled ``data`` member, as earlier recsim-gym versions
                wrote) with SB3's loader. **This runs code stored in the file**: only for files you trust.
            **kwargs: attributes to change after loading (SB3's convention), e.g. ``learning_starts=0``.

        Raises:
            AgentFileError: missing, truncated, damaged or foreign file (a torch or plain pickle always, an SB3 zip
                unless ``allow_pickle``), or weights that do not fit the saved architecture.
            ValueError: an ``env`` whose spaces differ from the saved ones.
        """
        file = Path(path)
        if not file.exists() and file.suffix == "" and file.with_name(file.name + ".zip").exists():
            file = file.with_name(file.name + ".zip")
        if foreign_file_reason(file) == SB3_PICKLE:
            if allow_pickle:
                return super().load(  # type: ignore[return-value]
                    file, env, device, custom_objects, print_system_info, force_reset, **kwargs
                )
            raise AgentFileError(
                f"{file}: {SB3_PICKLE}; refused (pass allow_pickle=True only for a file you trust, then save it again "
                "to get a code-free archive)"
            )
        _, members = read_archive(file, cls.__name__)
        try:
            agent, policy_state, optim_state = members["agent.json"], members["policy.pt"], members["optimizer.pt"]
            hp = dict(agent["hyperparameters"])
            policy_class = _POLICIES[agent["policy"]]
            observation_space = space_from_json(agent["spaces"]["observation"])
            action_space = space_from_json(agent["spaces"]["action"])
            saved = agent["state"]
        except (KeyError, TypeError, ValueError) as err:
            raise AgentFileError(f"{file}: agent.json is incomplete or malformed ({err})") from None
        lr = hp.pop("learning_rate")
        hp["learning_rate"] = LinearSchedule(*lr["linear"]) if isinstance(lr, dict) else lr
        policy_kwargs = dict(hp.pop("policy_kwargs"))
        if "optimizer_class" in policy_kwargs:
            policy_kwargs["optimizer_class"] = getattr(torch.optim, policy_kwargs["optimizer_class"])
        if "policy_kwargs" in kwargs and kwargs["policy_kwargs"] != policy_kwargs:
            raise ValueError(f"policy_kwargs {kwargs['policy_kwargs']} differ from the saved ones {policy_kwargs}")
        hp["train_freq"] = tuple(hp["train_freq"]) if isinstance(hp["train_freq"], list) else hp["train_freq"]
        n_envs = int(agent["n_envs"])
        if env is not None:
            env = cls._wrap_env(env, int(hp["verbose"]))
            check_for_correct_spaces(env, observation_space, action_space)
            n_envs = env.num_envs
        model = cls(
            policy=policy_class, env=env, device=device, policy_kwargs=policy_kwargs, _init_setup_model=False, **hp
        )
        if env is None:
            model.observation_space, model.action_space = observation_space, action_space
        model.n_envs = n_envs
        model.__dict__.update({k: v for k, v in kwargs.items() if k != "policy_kwargs"})
        model._setup_model()
        q_net = model.policy.q_net
        frozen = set(agent.get("frozen_parameters", []))
        for name, p in q_net.named_parameters():
            p.requires_grad_(name not in frozen)
        model.policy.refresh_optimizer(model.lr_schedule(1))
        try:
            model.policy.load_state_dict(policy_state)
            model.policy.optimizer.load_state_dict(optim_state)
        except (RuntimeError, ValueError, KeyError) as err:
            raise AgentFileError(
                f"{file}: the saved weights do not fit the architecture agent.json describes ({_first_line(err)})"
            ) from None
        model.num_timesteps = int(saved["num_timesteps"])
        model._total_timesteps = int(saved["total_timesteps"])
        model._num_timesteps_at_start = int(saved["num_timesteps_at_start"])
        model._episode_num = int(saved["episode_num"])
        model._n_updates = int(saved["n_updates"])
        model._n_calls = int(saved["n_calls"])
        model.exploration_rate = float(saved["exploration_rate"])
        model._current_progress_remaining = float(saved["current_progress_remaining"])
        model._explore_rng.bit_generator.state = saved["explore_rng"]
        return model

    def load_replay_buffer(  # type: ignore[override]
        self, path: str | os.PathLike[str], truncate_last_traj: bool = True, allow_pickle: bool = False
    ) -> None:
        """Stable-Baselines3's replay-buffer loader, which unpickles the file: refused unless ``allow_pickle``.

        Raises:
            AgentFileError: ``allow_pickle`` is False.
        """
        if not allow_pickle:
            raise AgentFileError(
                f"{path}: a replay buffer file is a pickle and loading it runs code stored in it; pass "
                "allow_pickle=True only for a file you trust"
            )
        super().load_replay_buffer(path, truncate_last_traj)  # type: ignore[arg-type]


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _versions() -> dict[str, str]:
    import stable_baselines3

    import recsim_gym

    return {
        "recsim_gym": getattr(recsim_gym, "__version__", "unknown"),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


class AdditiveDQN(CascadingDQN):
    """Additive slate DQN: ``Q(s, A) = sum_{a in A} Q(s, a)`` (the paper's GAN-GDQN baseline, after He et al.,
    "Deep Reinforcement Learning with a Combinatorial Action Space for Predicting Popular Reddit Threads", 2016).

    Same training loop, defaults and arguments as :class:`CascadingDQN` (all unspecified in Chen et al. for this
    baseline, chosen equal so the comparison isolates the Q parameterisation); the greedy slate is the top-``k``
    allowed entries by ``Q(s, a)`` and the target is ``y = r + gamma * sum_{top-k} Q_target(s', a)``, regressed by
    ``sum_j Q(s, a_j)``. Tuned values are in ``agents/additive_dqn.yml``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MultiInputPolicy": AdditiveQPolicy}

    def learn(  # type: ignore[override]
        self,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | None = None,
        log_interval: int = 4,
        tb_log_name: str = "AdditiveDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> AdditiveDQN:
        """See :meth:`CascadingDQN.learn`."""
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)


# Policy classes an archive may name (by name: an archive never imports anything).
_POLICIES: dict[str, type[SlateQPolicy]] = {
    "CascadingQPolicy": CascadingQPolicy,
    "AdditiveQPolicy": AdditiveQPolicy,
}


def _policy_name(policy_class: type[SlateQPolicy]) -> str:
    name = policy_class.__name__
    if _POLICIES.get(name) is not policy_class:
        raise ValueError(f"policy class {policy_class.__name__} cannot be saved: only {sorted(_POLICIES)} can")
    return name
