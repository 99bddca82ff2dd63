"""Does the evaluation cache serve every seed of an arm when a later notebook scores the runs again?

    OMP_NUM_THREADS=1 python benchmarks/bench_eval_cache.py
    python benchmarks/bench_eval_cache.py --old-rev aa26ddb --seeds 3 --repeats 3

Every fine-tune arm is trained once per seed, and notebooks 03, 05 and 06 call ``evaluate_runs`` on
runs notebook 02 (or an earlier cell) already scored. Up to ``--old-rev`` the cached scores were
one file per (label, dataset, measure): scoring seed k of an arm deleted seeds < k's files as
"stale", so each revisit scored all but the arm's last seed again. Now the file name carries the
source folder too (:func:`nriqa.analysis.evaluation._scores_prefix`).

In one process, the ``--old-rev`` version of ``nriqa/analysis/evaluation.py`` (read with ``git
show``) and the current one each prime a fresh cache (score a baseline folder and ``--seeds``
folders of one arm), then revisit all of them ``--repeats`` times, then judge the arm's folders
once under another label (a folder's scores are keyed by the folder, not the label, now). The folders hold PNG frames of
the demo's clip shapes (3 clips x 4 frames, 144 x 176); the panel is ``--panel``. Prints the median
revisit per version, their ratio, and whether the two versions' scores are equal bit for bit.
"""
from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nriqa.analysis import evaluation as current  # noqa: E402


def old_module(rev: str):
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:nriqa/analysis/evaluation.py"],
                         capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "evaluation_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("evaluation_old", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def frames_folder(folder: Path, clips: list[dict], noise: float, seed: int) -> None:
    import cv2

    g = torch.Generator().manual_seed(seed)
    for c in clips:
        d = folder / c["name"]
        d.mkdir(parents=True)
        out = (c["hr"][0] + noise * torch.randn(c["hr"][0].shape, generator=g)).clamp(0, 1)
        for i, f in enumerate(out):
            img = (f.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:, :, ::-1]
            cv2.imwrite(str(d / f"{i:04d}.png"), img)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-rev", default="aa26ddb", help="git revision with the per-label cache")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--panel", default="psnr,ssim,niqe,brisque")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    clips = [{"name": f"clip{i}", "hr": torch.rand(1, 4, 3, 144, 176) * 0.8 + 0.1} for i in range(3)]
    work = Path(tempfile.mkdtemp(prefix="bench-eval-cache-"))
    folders = [("baseline", work / "baseline")] + [("arm", work / f"arm-s{k}") for k in range(args.seeds)]
    for k, (_, f) in enumerate(folders):
        frames_folder(f, clips, 0.02 + 0.01 * k, k)
    panel = args.panel.split(",")
    res = {}
    for name, mod in (("old", old_module(args.old_rev)), ("new", current)):
        cache = work / f"cache-{name}"

        def visit():
            return [mod.evaluate(f, clips, panel, run=label, model="m", dataset="d", cache_dir=cache,
                                 progress=False) for label, f in folders]

        t = time.perf_counter()
        first = visit()
        prime = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            visit()
            times.append(time.perf_counter() - t)
        t = time.perf_counter()  # the same folders judged under another label (e.g. notebook 05's "without GAN")
        for _, f in folders[1:]:
            mod.evaluate(f, clips, panel, run="another label", model="m", dataset="d", cache_dir=cache, progress=False)
        relabel = time.perf_counter() - t
        res[name] = (prime, statistics.median(times), first, relabel)
        print(f"{name}: prime {prime:.2f} s, revisit median {statistics.median(times):.3f} s "
              f"({', '.join(f'{x:.3f}' for x in times)}), the arm's folders under another label {relabel:.2f} s",
              flush=True)
    same = all(a["score"].tolist() == b["score"].tolist() for a, b in zip(res["old"][2], res["new"][2]))
    print(f"revisit old/new: {res['old'][1] / res['new'][1]:.1f}x; another label old/new: "
          f"{res['old'][3] / res['new'][3]:.1f}x; scores bit-identical: {same}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
