"""Torch threads follow the free cores of a shared machine (nriqa.config.cpu_threads)."""
import pytest
import torch

from nriqa.config import cpu_threads, set_cpu_threads
from nriqa.errors import ConfigError


@pytest.mark.parametrize("cores, busy, want", [(2, 0, 2), (2, 0.4, 2), (2, 1, 1), (2, 5, 1), (16, 3, 13), (1, 0, 1)])
def test_threads_are_the_free_cores(monkeypatch, cores, busy, want):
    monkeypatch.delenv("NRIQA_THREADS", raising=False)
    assert cpu_threads(cores=cores, busy=busy) == want


def test_nriqa_threads_wins_and_is_checked(monkeypatch):
    monkeypatch.setenv("NRIQA_THREADS", "3")
    assert cpu_threads(cores=2, busy=2) == 3
    monkeypatch.setenv("NRIQA_THREADS", "zero")
    with pytest.raises(ConfigError, match="NRIQA_THREADS"):
        cpu_threads()


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


def test_busy_count_is_measured_now():
    from nriqa.config import _runnable_others

    assert _runnable_others(samples=3, every=0.001) >= 0
