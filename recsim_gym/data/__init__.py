"""Logged data: the Chen et al. log loader, dataset metadata and the checksum-verified download."""

from recsim_gym.data.logs import PAD, DedupReport, LogData, LogFormatError, file_sha256, load_logs

__all__ = ["PAD", "DedupReport", "LogData", "LogFormatError", "file_sha256", "load_logs"]
