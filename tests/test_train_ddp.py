"""DDP on 2 CPU processes (gloo): identical weights on both ranks, equal to one process.

The two ranks are started the way ``torchrun`` starts them (RANK / WORLD_SIZE / MASTER_ADDR /
MASTER_PORT in the environment, ``env://`` rendezvous), without the launcher process itself, to
keep the test short on a busy 2-core machine.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from doubles import ToyObjective, ToySampler, ToyVSR, toy_cfg

from nriqa.train import read_log, train
from nriqa.train.checkpoint import load_checkpoint

TESTS = Path(__file__).resolve().parent
SPEC = {"charbonnier": 1.0, "bright": 0.1}
CFG = dict(steps=4, objective=SPEC, accumulate=2, gradnorm_every=2, log_every=2, ckpt_every=2)

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    sys.path.insert(0, {tests!r})
    from nriqa.train import train
    from doubles import ToyObjective, ToySampler, ToyVSR, toy_cfg
    torch.manual_seed(0)
    model = ToyVSR()
    train(toy_cfg(**{cfg!r}), {run!r}, model=model, sampler=ToySampler(), objective=ToyObjective({spec!r}),
          progress=False)
    torch.save(model.state_dict(), os.path.join({out!r}, f"rank{{os.environ['RANK']}}.pt"))
""")


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), cfg=CFG, run=str(tmp_path / "ddp"), spec=SPEC,
                                    out=str(tmp_path)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    for rank, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"rank {rank} failed:\n{out[-3000:]}"
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k

    torch.manual_seed(0)
    single = train(toy_cfg(**CFG), tmp_path / "single", model=ToyVSR(), sampler=ToySampler(),
                   objective=ToyObjective(SPEC), progress=False)
    one = load_checkpoint(single, "latest")["params"]
    dist = load_checkpoint(tmp_path / "ddp", "latest")["params"]
    for k, v in one.items():
        if v.is_floating_point():
            torch.testing.assert_close(dist[k], v, rtol=1e-4, atol=1e-5)
            assert torch.equal(dist[k], r0[k])
    log = read_log(tmp_path / "ddp")      # rank 0 alone writes the log
    assert log["step"].tolist() == [2, 4] and log["gradnorm/bright"].notna().all()
