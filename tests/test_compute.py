"""nriqa.compute: a job computes with the profile's threads; the machine's load decides only how many
jobs run at once; importing nriqa pins the CPU kernels."""
import io
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from nriqa import compute
from nriqa.compute import concurrent_jobs, cpu_budget, job_threads, runnable_others, set_cpu_threads, use_job_numerics
from nriqa.errors import ConfigError


@pytest.mark.parametrize("cores, busy, want", [(2, 0, 2), (2, 0.4, 2), (2, 1, 1), (2, 5, 1), (16, 3, 13), (1, 0, 1)])
def test_budget_is_the_free_cores(monkeypatch, cores, busy, want):
    monkeypatch.delenv("NRIQA_THREADS", raising=False)
    assert cpu_budget(cores=cores, busy=busy) == want


def test_nriqa_threads_sets_the_budget_and_is_checked(monkeypatch):
    monkeypatch.setenv("NRIQA_THREADS", "3")
    assert cpu_budget(cores=2, busy=2) == 3
    for bad in ("zero", "0", "-1", "1.5"):
        monkeypatch.setenv("NRIQA_THREADS", bad)
        with pytest.raises(ConfigError, match="NRIQA_THREADS"):
            cpu_budget()


def test_set_cpu_threads_keeps_the_users_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        monkeypatch.delenv("_NRIQA_OMP_SET", raising=False)
        monkeypatch.setenv("NRIQA_THREADS", "2")
        assert set_cpu_threads() == 1  # the user's choice stands
        monkeypatch.setenv("_NRIQA_OMP_SET", "1")  # ... unless nriqa set it itself: then re-decided
        assert set_cpu_threads() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class _LoadavgFile:
    """Stands in for ``/proc/loadavg``: each open reads the next of ``lines``."""

    def __init__(self, lines: list[str]):
        self.lines, self.opened = list(lines), []

    def __call__(self, path, *a, **kw):
        self.opened.append(path)
        return io.StringIO(self.lines.pop(0))


@pytest.mark.parametrize("runnable, want", [([3, 7, 4], 3.0), ([1, 1, 1], 0.0), ([0, 0, 0], 0.0), ([5], 4.0),
                                            ([2, 9, 9, 2, 6], 5.0)])
def test_runnable_others_is_the_median_runnable_count_less_this_process(monkeypatch, runnable, want):
    """The 4th field of /proc/loadavg (runnable/total) counts this process too: the median over the
    samples, less one, at least 0; one sleep of ``every`` between samples."""
    fake = _LoadavgFile([f"0.52 0.58 0.59 {n}/812 4121\n" for n in runnable])
    slept = []
    monkeypatch.setattr(compute, "open", fake, raising=False)
    monkeypatch.setattr(compute, "time", SimpleNamespace(sleep=slept.append))
    assert runnable_others(samples=len(runnable), every=0.25) == want
    assert fake.opened == ["/proc/loadavg"] * len(runnable) and slept == [0.25] * (len(runnable) - 1)


@pytest.mark.parametrize("content", [None, "", "0.52 0.58 0.59 x/812 4121\n"])   # no /proc; unreadable lines
def test_runnable_others_falls_back_to_the_load_average(monkeypatch, content):
    def unreadable(path, *a, **kw):
        if content is None:
            raise FileNotFoundError(path)
        return io.StringIO(content)

    monkeypatch.setattr(compute, "open", unreadable, raising=False)
    monkeypatch.setattr(compute.os, "getloadavg", lambda: (2.5, 1.0, 0.5))
    assert runnable_others(samples=3, every=0) == 2.5
    monkeypatch.delattr(compute.os, "getloadavg")
    assert runnable_others(samples=3, every=0) == 0.0


def test_a_busy_process_is_counted():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert runnable_others(samples=9, every=0.01) >= 1
    finally:
        busy.kill()
        busy.wait()


def test_job_threads_come_from_the_profile_and_are_checked():
    assert job_threads({}) == 1 and job_threads({"threads": 3}) == 3
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ConfigError, match="threads"):
            job_threads({"threads": bad})


def test_use_job_numerics_ignores_the_machine(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("NRIQA_THREADS", "2")
        torch.set_num_threads(2)
        assert use_job_numerics({"threads": 1, "device": "cpu"}) == 1
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("budget, threads, workers, want", [(2, 1, 2, 2), (1, 1, 2, 1), (2, 2, 2, 1), (16, 2, 4, 4),
                                                            (1, 4, 3, 1)])
def test_the_load_decides_how_many_jobs_run_at_once(budget, threads, workers, want):
    cfg = {"threads": threads, "device": "cpu"}
    assert concurrent_jobs(cfg, workers, budget=budget) == want
    assert concurrent_jobs({**cfg, "device": "cuda"}, workers, budget=budget) == workers


def test_importing_nriqa_pins_the_cpu_kernels():
    """AVX-512 kernels round differently from AVX2 ones: importing nriqa first makes every x86-64
    machine use the AVX2 kernels (ATen dispatch, oneDNN, MKL), unless the user chose otherwise."""
    import platform

    from nriqa.compute import CPU_KERNEL_PINS

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the pins are for x86-64")
    env = {k: v for k, v in __import__("os").environ.items() if k not in CPU_KERNEL_PINS}
    code = ("import nriqa, os, torch; torch.rand(3).sum(); "
            "print(torch.backends.cpu.get_cpu_capability(), os.environ['ONEDNN_MAX_CPU_ISA'], os.environ['MKL_CBWR'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["AVX2", "AVX2", "AVX2"], out.stderr
    env["ONEDNN_MAX_CPU_ISA"] = "SSE41"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[1] == "SSE41"   # the user's choice stands
