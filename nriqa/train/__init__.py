"""nriqa.train — the GPU-first trainer (CPU works, same code path).

- :func:`train` trains, fine-tunes (``init_from=``) or resumes a generator into a run folder
  (a hand-made ``objective=`` is a :class:`nriqa.losses.TrainingObjective`)
- :func:`load_generator`, :func:`read_log`, :func:`run_is_done` read run folders;
  :func:`training_changes` names what a run's saved config and a new one disagree on;
  ``run_files.run_key`` / ``run_files.keyed_config``: a hash of (and the settings behind) what a run trains
- :mod:`nriqa.train.balance` chooses loss weights from gradient magnitudes

Modules: ``trainer`` (the loop and its named steps), ``train_config`` (TrainConfig), ``optim`` (fused
Adam, skipped steps), ``state`` (tally, ``TrainState``: what a checkpoint holds, ``RunFolder``: start,
resume, checkpoints, done.json), ``log`` (log rows), ``run_files`` (run-folder readers), ``generators``
(build / load a generator), ``checkpoint``, ``lock``, ``schedule``, ``ema``, ``distributed``, ``balance``,
``cli``.

Run folder: ``config.yaml`` (resolved config, ``config_hash``, ``init_from``, ``run_key``,
``keyed``), ``checkpoints/{latest,best,step_000100}.pt``, ``log.jsonl``, ``done.json`` (``evaluated``:
the warm-up EMA the run is scored with); ``train.lock`` while a
trainer runs in it (:mod:`nriqa.train.lock`).
"""
from . import balance
from .generators import load_generator
from .run_files import read_log, run_is_done, training_changes
from .state import NonFiniteError
from .train_config import TrainConfig
from .trainer import train

__all__ = ["train", "load_generator", "read_log", "run_is_done", "training_changes", "balance", "NonFiniteError",
           "TrainConfig"]
