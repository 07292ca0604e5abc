"""Gymnasium environments of recsim_gym (each module holds one family: ``<Name>Env`` and its ``<Name>VectorEnv``)."""
