"""What a run's numbers depend on besides its profile: the code's commit, the versions of the packages
whose code or data files the measures use, the job threads and the device. Recorded in
``summary.json`` (section ``manifest``), printed by every notebook in one line, and compared with the
checkout by ``python -m nriqa findings``.

    manifest(cfg)       -> {"commit": "3ba5759...", "code_changed": False, "python": "3.11.7",
                            "packages": {"torch": "2.14.1", ...}, "cpu_capability": "AVX2",
                            "cpu_kernel_pins": {"ONEDNN_MAX_CPU_ISA": "AVX2", ...},
                            "threads": 1, "device": "cpu", "profile": "demo"}
    manifest_line(cfg)  -> "run manifest: commit 3ba5759, python 3.11.7, torch 2.14.1, ..., 1 thread(s) per job, cpu"

Nothing here reads the machine's load or the time: the same commit, profile and installed versions
give the same manifest on every machine of one kind.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any, Mapping

from nriqa.compute import CPU_KERNEL_PINS, job_threads
from nriqa.paths import REPO_ROOT

#: distributions whose code or shipped files decide the numbers (the measures' wheels included)
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pyiqa", "lpips", "iqa-torch", "brisque", "stlpips-pytorch",
            "opencv-python-headless", "scikit-image", "scikit-video", "cvvdp")
#: the files of the checkout whose change changes a run's numbers
CODE_PATHS = ("nriqa", "notebooks/src", "pyproject.toml")
#: keys two manifests must share for their numbers to be comparable
COMPARED = ("python", "packages", "cpu_capability", "cpu_kernel_pins", "threads", "device")


def _git(*args: str) -> str | None:
    """``git <args>`` in the repository (its stdout, stripped), or None without git or a repository."""
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit() -> str | None:
    """The checkout's commit (40 hex digits), None outside a git checkout (an installed package)."""
    return _git("rev-parse", "HEAD")


def code_changed(since: str | None = None) -> bool | None:
    """Whether :data:`CODE_PATHS` differ from commit ``since`` (default: HEAD, so uncommitted edits
    count); None when git cannot tell (no checkout, or ``since`` unknown to it)."""
    if since is None:
        status = _git("status", "--porcelain", "--", *CODE_PATHS)
        return None if status is None else bool(status)
    names = _git("diff", "--name-only", since, "--", *CODE_PATHS)
    return None if names is None else bool(names)


def versions() -> dict[str, str | None]:
    """``{distribution: version}`` of :data:`PACKAGES` (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_capability() -> str | None:
    """The vector instruction set torch's CPU kernels dispatch to (``"AVX2"``, ``"AVX512"``, ...):
    other kernels, other float rounding."""
    import torch

    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return str(get()) if get else None


def cpu_kernel_pins() -> dict[str, str | None]:
    """The environment that fixes oneDNN's and MKL's kernels (:data:`nriqa.compute.CPU_KERNEL_PINS`)."""
    return {key: os.environ.get(key) for key in CPU_KERNEL_PINS}


def manifest(cfg: Mapping[str, Any]) -> dict:
    """The run manifest of a resolved profile (:func:`nriqa.study.runs.profile`)."""
    return {"commit": commit(), "code_changed": code_changed(), "python": platform.python_version(),
            "packages": versions(), "cpu_capability": cpu_capability(), "cpu_kernel_pins": cpu_kernel_pins(),
            "threads": job_threads(cfg),
            "device": str(cfg.get("device", "cpu")), "profile": str(cfg.get("name", "?"))}


def manifest_line(cfg: Mapping[str, Any] | None = None, *, recorded: Mapping[str, Any] | None = None) -> str:
    """One line of the manifest (``recorded``, else that of ``cfg``), as each notebook prints it."""
    m = dict(recorded) if recorded is not None else manifest(cfg or {})
    sha = (m.get("commit") or "unknown")[:7] + (" + uncommitted code" if m.get("code_changed") else "")
    pk = m.get("packages") or {}
    shown = ", ".join(f"{k} {pk.get(k)}" for k in ("torch", "pyiqa", "numpy") if k in pk)
    return (f"run manifest: profile {m.get('profile')}, commit {sha}, python {m.get('python')}, {shown}, "
            f"CPU kernels {m.get('cpu_capability')}, {m.get('threads')} thread(s) per job, {m.get('device')}")


def differences(recorded: Mapping[str, Any], here: Mapping[str, Any]) -> list[str]:
    """What makes a recorded manifest's numbers not those this checkout would give: a commit whose
    code differs from the checkout's, other versions, CPU kernels, threads or device (one phrase each)."""
    out = []
    then = recorded.get("commit")
    if not then:
        out.append("the findings record no commit")
    elif recorded.get("code_changed"):
        out.append(f"the findings came from uncommitted code on top of {then[:7]}")
    else:
        changed = code_changed(then)
        if changed is None:
            out.append(f"cannot compare the code with {then[:7]} (not in this checkout's history)")
        elif changed or code_changed():
            out.append(f"the code ({', '.join(CODE_PATHS)}) differs from {then[:7]}, where the findings came from")
    for key in COMPARED:
        a, b = recorded.get(key), here.get(key)
        if key == "packages":
            a, b = a or {}, b or {}
            out += [f"{name} {a.get(name)} then, {b.get(name)} here" for name in sorted(set(a) | set(b))
                    if a.get(name) != b.get(name)]
        elif a != b:
            out.append(f"{key} {a} then, {b} here")
    return out
