"""nriqa.train — the GPU-first trainer (CPU works, same code path).

- :func:`train` trains, fine-tunes (``init_from=``) or resumes a generator into a run folder
- :func:`load_generator`, :func:`read_log`, :func:`run_is_done` read run folders
- :mod:`nriqa.train.balance` chooses loss weights from gradient magnitudes

Run folder: ``config.yaml`` (resolved config, ``config_hash``, ``init_from``),
``checkpoints/{latest,best,step_000100}.pt``, ``log.jsonl``, ``done.json``.
"""
from . import balance
from .runs import load_generator, read_log, run_is_done
from .trainer import NonFiniteError, TrainConfig, train

__all__ = ["train", "load_generator", "read_log", "run_is_done", "balance", "NonFiniteError", "TrainConfig"]
