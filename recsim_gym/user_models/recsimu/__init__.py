"""RecSimu (Zhao et al., "Toward Simulating Environments in Reinforcement Learning Based Recommendations", AAAI 2020):
data adaptation, generator and discriminator, Algorithm 1, baselines, bundles and evaluation."""

from recsim_gym.user_models.recsimu.model import Discriminator, Generator, RecSimuConfig
from recsim_gym.user_models.recsimu.storage import RecSimuBundle, load_recsimu_bundle, save_recsimu_bundle
from recsim_gym.user_models.recsimu.training import RecSimuTrainConfig, train_recsimu

__all__ = [
    "Discriminator",
    "Generator",
    "RecSimuBundle",
    "RecSimuConfig",
    "RecSimuTrainConfig",
    "load_recsimu_bundle",
    "save_recsimu_bundle",
    "train_recsimu",
]
