"""Agents that train on recsim_gym environments or logs (one subpackage per algorithm)."""
