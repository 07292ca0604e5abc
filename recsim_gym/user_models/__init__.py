"""Learned user models: the GAN user model of Chen et al. (2019), its training, evaluation and storage."""

from recsim_gym.user_models.gan_user_model import GANUserModel, UserModelConfig
from recsim_gym.user_models.training import TrainConfig, train_user_model

__all__ = ["GANUserModel", "TrainConfig", "UserModelConfig", "train_user_model"]
