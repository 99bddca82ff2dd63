"""Run folders survive crashes: damaged checkpoints, orphaned temporary files, two trainers on one folder."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from doubles import Crash, ToyObjective, ToySampler, ToyVSR, toy_cfg

from nriqa.errors import CheckpointError, RunLockedError, UserError
from nriqa.paths import atomic_write_text, host_name, stale_tmp_files
from nriqa.train import load_generator, read_log, run_is_done, train
from nriqa.train.checkpoint import load_checkpoint, save_checkpoint, step_checkpoints
from nriqa.train.lock import LOCK_FILE, read_holder, run_lock

TESTS = Path(__file__).resolve().parent


def _run(run_dir, cfg, objective=None, seed=0):
    torch.manual_seed(seed)
    return train(cfg, run_dir, model=ToyVSR(dropout=0.1), sampler=ToySampler(),
                 objective=objective or ToyObjective(cfg["train"]["objective"]), progress=False)


def _crashed_run(run_dir):
    """A run stopped at step 7 of 8 with checkpoints at 2, 4, 6 (latest.pt -> step 6)."""
    cfg = toy_cfg(ckpt_every=2, keep_last=3)
    with pytest.raises(Crash):
        _run(run_dir, cfg, ToyObjective(cfg["train"]["objective"], crash_at=7))
    assert step_checkpoints(run_dir) == [2, 4, 6] and load_checkpoint(run_dir)["step"] == 6
    return cfg


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.unlink()  # latest.pt is a hard link to a step file: damage this name only
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00garbage" * 50, "empty": b"",
                      "not-a-checkpoint": b""}[how])
    if how == "not-a-checkpoint":
        torch.save([1, 2, 3], path)


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "not-a-checkpoint"])
def test_resume_falls_back_to_newest_intact_checkpoint(tmp_path, how):
    ref = tmp_path / "uninterrupted"
    cfg = toy_cfg(ckpt_every=2, keep_last=3)
    _run(ref, cfg)
    run = tmp_path / "run"
    _crashed_run(run)
    _damage(run / "checkpoints" / "latest.pt", how)
    (run / "checkpoints" / "step_000006.pt").unlink()   # the newest step file is gone as well: back to step 4
    with pytest.warns(UserWarning, match=r"latest\.pt \(.*\) could not be loaded; resuming from step_000004\.pt "
                                         r"\(step 4\)") as rec:
        _run(run, cfg)
    assert str(run / "checkpoints") in str(rec[0].message) and rec[0].filename == __file__
    assert run_is_done(run)
    a, b = load_checkpoint(ref), load_checkpoint(run)
    assert a["step"] == b["step"] == 8
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k         # the same numbers as the run never stopped
    assert read_log(run)["step"].tolist() == [2, 4, 6, 8]
    assert load_checkpoint(run, "latest")["step"] == 8                # latest.pt is whole again


def test_resume_with_a_missing_latest_uses_the_newest_step_file(tmp_path):
    run = tmp_path / "run"
    cfg = _crashed_run(run)
    (run / "checkpoints" / "latest.pt").unlink()
    with pytest.warns(UserWarning, match="latest.pt is missing; resuming from step_000006.pt"):
        _run(run, cfg)
    assert load_checkpoint(run)["step"] == 8


def test_no_intact_checkpoint_is_a_clear_error_naming_the_folder(tmp_path):
    run = tmp_path / "run"
    cfg = _crashed_run(run)
    for p in (run / "checkpoints").glob("*.pt"):
        _damage(p, "truncated")
    with pytest.raises(CheckpointError) as err:
        _run(run, cfg)
    msg = str(err.value)
    assert f"no intact checkpoint in {run / 'checkpoints'}" in msg
    assert "latest.pt (truncated or not a checkpoint" in msg and "step_000002.pt" in msg
    assert "To restart the run from step 0, delete" in msg
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)
    assert not (run / LOCK_FILE).exists()                               # the lock went with the error


def test_load_generator_on_a_corrupt_file_names_the_file(tmp_path):
    run = tmp_path / "run"
    _crashed_run(run)
    _damage(run / "checkpoints" / "latest.pt", "truncated")
    with pytest.raises(CheckpointError, match=r"checkpoint .*latest\.pt cannot be loaded: truncated") as err:
        load_generator(run, model=ToyVSR())
    assert str(run / "checkpoints" / "latest.pt") in str(err.value)
    assert "Other checkpoints there: best, step_000002, step_000004, step_000006" in str(err.value)
    assert isinstance(load_generator(run, model=ToyVSR(), which="step_000004"), ToyVSR)


def test_atomic_helpers_remove_orphans_of_their_target_only(tmp_path):
    target = tmp_path / "table.csv"
    dead = _dead_pid()
    orphan = tmp_path / f".table.csv.{host_name()}.{dead}.abc123.tmp"     # a crashed writer of this machine
    legacy = tmp_path / ".table.csv.k2j4h5g6.tmp"                         # unknown writer, not touched for 2 h
    fresh = tmp_path / ".table.csv.zz9y8x7w.tmp"                          # unknown writer, just now: may be alive
    alive = tmp_path / f".table.csv.{host_name()}.{os.getppid()}.abc123.tmp"
    other = tmp_path / f".other.csv.{host_name()}.{dead}.abc123.tmp"      # another target's: not ours to judge
    for p in (orphan, legacy, fresh, alive, other):
        p.write_text("half")
    os.utime(legacy, (os.path.getmtime(legacy) - 7200,) * 2)
    assert stale_tmp_files(tmp_path, "table.csv") == sorted([orphan, legacy])
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (target, fresh, alive, other))


def test_atomic_path_flushes_the_file_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.fstat(fd).st_mode & 0o040000)),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", 0)), real_replace(a, b))[1])
    save_checkpoint(tmp_path, {"step": 3, "params": {}})
    first = calls[: 3]
    assert first[0] == ("fsync", 0) and first[1] == ("replace", 0)      # the file's data, then the rename
    if os.name != "nt":
        assert first[2][0] == "fsync" and first[2][1]                    # then the folder's entry
    assert load_checkpoint(tmp_path)["step"] == 3


def test_a_new_run_removes_orphaned_temporary_files(tmp_path):
    run = tmp_path / "run"
    cfg = _crashed_run(run)
    orphans = [run / "checkpoints" / ".step_000008.pt.k2j4h5g6.tmp", run / ".config.yaml.k2j4h5g6.tmp",
               run / "checkpoints" / f".latest.pt.{host_name()}.{_dead_pid()}.x1y2z3.tmp"]
    for p in orphans:
        p.write_bytes(b"half a checkpoint")
    _run(run, cfg)
    assert run_is_done(run) and not [p for p in orphans if p.exists()]
    assert not list(run.rglob("*.tmp"))


# --- one trainer per run folder ---------------------------------------------------------------------------

def _hold_lock(run_dir, ready, release):
    with run_lock(run_dir):
        ready.set()
        release.wait(60)


def test_a_second_trainer_on_a_locked_folder_stops_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(run), ready, release))
    holder.start()
    try:
        assert ready.wait(60), "the lock-holding process did not start"
        info = read_holder(run / LOCK_FILE)
        assert info["pid"] == holder.pid and info["host"] == host_name() and info["started"]
        with pytest.raises(RunLockedError) as err:
            _run(run, toy_cfg())
        msg = str(err.value)
        assert f"run folder {run} is in use by another trainer: pid {holder.pid} on host {host_name()}" in msg
        assert f"delete {run / LOCK_FILE}" in msg
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()  # nothing touched
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0 and not (run / LOCK_FILE).exists()        # released on exit
    _run(run, toy_cfg())
    assert run_is_done(run) and not (run / LOCK_FILE).exists()


def test_a_killed_trainers_lock_is_taken_over_with_a_warning(tmp_path):
    run = tmp_path / "run"
    code = ("import os, sys; from nriqa.train.lock import run_lock\n"
            "cm = run_lock(sys.argv[1]); cm.__enter__(); os._exit(0)   # dies holding the lock\n")
    subprocess.run([sys.executable, "-c", code, str(run)], check=True, cwd=TESTS.parent,
                   env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    stale = read_holder(run / LOCK_FILE)
    assert stale["host"] == host_name() and stale["pid"] != os.getpid()
    with pytest.warns(UserWarning, match=rf"taking over the stale lock .*train\.lock of pid {stale['pid']} ") as rec:
        _run(run, toy_cfg())
    assert rec[0].filename == __file__                                    # points at the caller of train()
    assert run_is_done(run) and not (run / LOCK_FILE).exists()


def test_a_lock_from_another_machine_is_not_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "gpu-box-7", "started": "2024-05-01T10:00:00+00:00"}))
    with pytest.raises(RunLockedError, match="pid 4242 on host gpu-box-7, started 2024-05-01T10:00:00"):
        _run(run, toy_cfg())
    assert (run / LOCK_FILE).exists()


def test_finished_runs_are_reused_without_taking_the_lock(tmp_path):
    run = tmp_path / "run"
    _run(run, toy_cfg())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with run_lock(run):                   # e.g. an evaluation holds it: reading a finished run still works
            assert _run(run, toy_cfg()) == run


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_host_name_is_safe_in_file_names():
    name = host_name()
    assert name and all(c.isalnum() or c == "-" for c in name)
