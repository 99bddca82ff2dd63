"""nriqa next to the reference code: a BasicVSR++ training step vs BasicSR, IQA evaluation vs pyiqa.

    PYTHONPATH=/tmp/basicsr_site python benchmarks/bench_vs_basicsr.py            # CPU, both parts
    PYTHONPATH=/tmp/basicsr_site python benchmarks/bench_vs_basicsr.py --device cuda --shape 1 30 64 64
    python benchmarks/bench_vs_basicsr.py --parts eval                             # no BasicSR needed

Part "step": one paper-size BasicVSR++ training step (forward, Charbonnier, backward, Adam step)
in nriqa (``nriqa.models.build("basicvsrpp", "paper")`` + ``nriqa.losses.Charbonnier``) and in
BasicSR's released ``BasicVSRPlusPlus`` + its ``CharbonnierLoss``, in one process, on the same
LR/HR tensors, with the same weights (ours converted into BasicSR's layout) and the same optimizer
(Adam, lr 1e-4, betas 0.9/0.99, as BasicVSR++ trains). After warm-up the variants alternate
(A B A B ...); reported: median wall and process-CPU seconds per step, and the median of the
per-pair ratios nriqa / BasicSR. ``--nriqa-backends auto torchvision`` adds nriqa with its
deformable convolution forced to torchvision's kernel (the one BasicSR calls), which separates the
backend from the rest of the model. Parameter counts of both models and max |output difference|
are printed first.

Part "eval": frames/s of the demo panel (``nriqa.config.load_profile("demo")["panel"]``) through
``nriqa.quality.create(name)`` and through ``pyiqa.create_metric(name)`` directly, for the panel
names that pyiqa builds without downloading anything (downloads are refused, never made). Same
frames for both, alternating, under ``torch.no_grad()``; also the largest score difference.

BasicSR is an optional benchmark dependency and is never copied into this repository. Install it
into a folder of its own, with the torch you already have, and put that folder on PYTHONPATH:

    pip install --target /tmp/basicsr_site --no-deps --no-build-isolation basicsr

Two benchmark-local measures make the released package (1.4.2) usable with current torchvision;
neither replaces any BasicSR code:

- ``basicsr/__init__.py`` imports BasicSR's data pipelines, which import
  ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17). The script puts an
  empty package object for ``basicsr`` (whose ``__path__`` is the installed folder) in
  ``sys.modules``, so that only ``basicsr.archs`` and ``basicsr.losses`` are imported.
- ``BasicVSRPlusPlus.__init__`` adds the deformable-alignment modules only when
  ``torch.cuda.is_available()``; on a CPU-only machine it warns and builds a model *without
  alignment* (5.28 M parameters instead of 7.32 M). On such a machine the script answers True to
  that question during the constructor only. The forward then calls
  ``torchvision.ops.deform_conv2d``, which runs on the CPU; BasicSR's compiled ``deform_conv_ext``
  is not installed and never called (the script checks that the module does not have it).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `import nriqa` resolves to this checkout

INSTALL_HINT = """BasicSR is not importable, so the training-step comparison cannot run.
It is an optional benchmark dependency (never vendored into nriqa). Install it into a folder of
its own with the torch of this environment, then put that folder on PYTHONPATH for this script:

    {python} -m pip install --target /tmp/basicsr_site --no-deps --no-build-isolation basicsr
    PYTHONPATH=/tmp/basicsr_site {python} benchmarks/bench_vs_basicsr.py

(`--parts eval` runs the IQA evaluation comparison alone; it needs no BasicSR.)"""


# ------------------------------------------------------------------------------------------------
# BasicSR, imported without its package __init__
# ------------------------------------------------------------------------------------------------
def import_basicsr():
    """(BasicVSRPlusPlus, CharbonnierLoss, deform_conv module) from an installed BasicSR, or None."""
    spec = importlib.util.find_spec("basicsr")
    if spec is None or not spec.submodule_search_locations:
        return None
    os.environ.pop("BASICSR_JIT", None)  # "True" would make BasicSR compile its CUDA ops on import
    if "basicsr" not in sys.modules:
        package = types.ModuleType("basicsr")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = None
        sys.modules["basicsr"] = package
    from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus
    from basicsr.losses.basic_loss import CharbonnierLoss
    from basicsr.ops.dcn import deform_conv

    return BasicVSRPlusPlus, CharbonnierLoss, deform_conv


@contextlib.contextmanager
def _cuda_reported_available():
    """During the block, ``torch.cuda.is_available()`` answers True (see the module docstring)."""
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        yield
    finally:
        torch.cuda.is_available = real


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------
# part "step"
# ------------------------------------------------------------------------------------------------
def bench_step(args, device: torch.device) -> dict | None:
    from nriqa.losses import Charbonnier
    from nriqa.models import build, count_parameters
    from nriqa.models import ops as nriqa_ops

    found = import_basicsr()
    if found is None:
        print(INSTALL_HINT.format(python=sys.executable))
        return None
    BasicVSRPlusPlus, CharbonnierLoss, deform_conv = found

    torch.manual_seed(0)
    ours = build("basicvsrpp", "paper")
    with contextlib.nullcontext() if torch.cuda.is_available() else _cuda_reported_available():
        ref = BasicVSRPlusPlus(mid_channels=ours.mid_channels, num_blocks=7, is_low_res_input=True)
    n_ours, n_ref = count_parameters(ours), sum(p.numel() for p in ref.parameters())
    try:
        from nriqa.models.convert import to_reference_state_dict
        result = ref.load_state_dict(to_reference_state_dict("basicvsrpp", ours), strict=False)
        missing = sorted(set(result.missing_keys) - {"spynet.mean", "spynet.std"})  # BasicSR's constant buffers
        if missing or result.unexpected_keys:
            raise RuntimeError(f"weight conversion mismatch: missing {missing}, unexpected {result.unexpected_keys}")
        same_weights = True
    except ImportError:
        same_weights = False  # both keep their own random initialisation
    auto = "torchvision" if device.type == "cuda" else "grid"  # what nriqa's "auto" picks
    resolved = {b: auto if b == "auto" else b for b in args.nriqa_backends}
    variants = {f"nriqa (deform: {resolved[b]})": (build("basicvsrpp", "paper"), b) for b in args.nriqa_backends}
    for net, _ in variants.values():
        net.load_state_dict(ours.state_dict())
    del ours
    variants["basicsr"] = (ref, None)

    b, t, h, w = args.shape
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(b, t, 3, h, w, generator=gen).to(device)
    hr = torch.rand(b, t, 3, 4 * h, 4 * w, generator=gen).to(device)
    losses = {name: (Charbonnier() if backend is not None else CharbonnierLoss())
              for name, (_, backend) in variants.items()}
    opts = {}
    for name, (net, _) in variants.items():
        net.to(device).train()
        opts[name] = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))

    def run(name: str, grad: bool = True):
        net, backend = variants[name]
        saved = nriqa_ops.DEFORM_BACKEND
        if backend is not None:
            nriqa_ops.DEFORM_BACKEND = backend
        try:
            if not grad:
                with torch.no_grad():
                    return net(lr)
            opts[name].zero_grad(set_to_none=True)
            loss = losses[name](net(lr), hr)
            loss.backward()
            opts[name].step()
            return loss
        finally:
            nriqa_ops.DEFORM_BACKEND = saved

    outs = {name: run(name, grad=False) for name in variants}
    diff = {name: float((outs[name] - outs["basicsr"]).abs().max()) for name in variants if name != "basicsr"}
    scale = float(outs["basicsr"].abs().max())
    del outs
    print(f"# step: BasicVSR++ paper, LR input {b}x{t}x{h}x{w} -> HR {4 * h}x{4 * w}, device {device}, "
          f"threads {torch.get_num_threads()}")
    print(f"parameters: nriqa {n_ours:,}  BasicSR {n_ref:,}  (same weights: {same_weights})")
    for name, d in diff.items():
        print(f"max |{name} - basicsr| output = {d:.3g} (output max |y| = {scale:.3g})")
    print(f"BasicSR compiled deform_conv_ext present: {hasattr(deform_conv, 'deform_conv_ext')} "
          f"(the forward calls torchvision.ops.deform_conv2d)", flush=True)

    names = list(variants)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for i in range(args.warmup + args.pairs):
        for name in names:  # A B (C) A B (C) ...: load on a shared machine hits every variant alike
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            run(name)
            _sync(device)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i >= args.warmup:
                wall[name].append(dt)
                cpu[name].append(dc)
            print(f"  {'warm-up' if i < args.warmup else 'pair ' + str(i - args.warmup + 1)} {name}: "
                  f"{dt:.3f} s wall, {dc:.3f} s CPU", flush=True)
    rows = []
    for name in names:
        row = dict(variant=name, wall_s=statistics.median(wall[name]), cpu_s=statistics.median(cpu[name]),
                   wall=wall[name], cpu=cpu[name])
        if name != "basicsr":
            row["ratio_wall"] = statistics.median(a / r for a, r in zip(wall[name], wall["basicsr"], strict=True))
            row["ratio_cpu"] = statistics.median(a / r for a, r in zip(cpu[name], cpu["basicsr"], strict=True))
            row["ratio_wall_pairs"] = [a / r for a, r in zip(wall[name], wall["basicsr"], strict=True)]
            row["max_abs_output_diff"] = diff[name]
        rows.append(row)
    cpu_col = device.type == "cpu"
    print(f"\n{args.pairs} pairs after {args.warmup} warm-up round(s); medians; ratio = median of the per-pair "
          f"ratios variant / basicsr")
    print("| variant | params | wall s/step | " + ("CPU s/step | " if cpu_col else "") +
          "time vs BasicSR (wall) | " + ("time vs BasicSR (CPU) | " if cpu_col else "") + "per-pair ratios (wall) |")
    print("|---|---|---|" + ("---|" if cpu_col else "") + "---|" + ("---|" if cpu_col else "") + "---|")
    for row in rows:
        params = n_ref if row["variant"] == "basicsr" else n_ours
        ratio = f"{row['ratio_wall']:.2f}x" if "ratio_wall" in row else "1.00x"
        ratio_c = f"{row['ratio_cpu']:.2f}x" if "ratio_cpu" in row else "1.00x"
        pairs = ", ".join(f"{r:.2f}" for r in row.get("ratio_wall_pairs", [])) or "-"
        print(f"| {row['variant']} | {params:,} | {row['wall_s']:.2f} | "
              + (f"{row['cpu_s']:.2f} | " if cpu_col else "")
              + f"{ratio} | " + (f"{ratio_c} | " if cpu_col else "") + f"{pairs} |")
    return dict(shape=list(args.shape), params={"nriqa": n_ours, "basicsr": n_ref}, same_weights=same_weights,
                rows=rows, deform_conv_ext=hasattr(deform_conv, "deform_conv_ext"))


# ------------------------------------------------------------------------------------------------
# part "eval"
# ------------------------------------------------------------------------------------------------
class DownloadRefused(RuntimeError):
    pass


@contextlib.contextmanager
def _no_downloads():
    """pyiqa and torch.hub raise instead of downloading (benchmark-local guard)."""
    import pyiqa.utils.download_util as dl

    def refuse(url, *a, **k):
        raise DownloadRefused(f"would download {url}")

    saved = (dl.download_url_to_file, torch.hub.download_url_to_file)
    dl.download_url_to_file = torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        dl.download_url_to_file, torch.hub.download_url_to_file = saved


def _frames(n: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference frames (corner crops of scikit-image's bundled photos) and a noisy copy,
    ``(n, 3, side, side)`` in [0, 1]."""
    from skimage import data

    crops = []
    for photo in (data.astronaut(), data.coffee(), data.chelsea()):
        img = torch.from_numpy(photo).permute(2, 0, 1).float() / 255.0
        h, w = img.shape[-2:]
        if min(h, w) < side:
            raise ValueError(f"--eval-side {side}: the photos are {h}x{w}; use at most {min(h, w)}")
        for y, x in ((0, 0), (0, w - side), (h - side, 0), (h - side, w - side)):
            crops.append(img[:, y:y + side, x:x + side])
    ref = torch.stack([crops[i % len(crops)] for i in range(n)])
    g = torch.Generator().manual_seed(seed)
    dist = (ref + 0.05 * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    return dist, ref


def bench_eval(args, device: torch.device) -> list[dict]:
    import pyiqa

    from nriqa import quality
    from nriqa.config import load_profile

    panel = list(load_profile("demo")["panel"])
    dist, ref = (t.to(device) for t in _frames(args.eval_frames, args.eval_side))
    n = dist.shape[0]
    rows = []
    print(f"\n# eval: demo panel, {n} frames of {args.eval_side}x{args.eval_side}, device {device}, "
          f"threads {torch.get_num_threads()}")
    for name in panel:
        row = dict(name=name)
        try:
            card = quality.card(name)
        except ValueError:  # kit-trained measures (name@dataset) register only once trained
            row["skip"] = "not measured: kit-trained, no checkpoint on disk" if "@" in name else "unknown name"
            rows.append(row)
            print(f"{name}: {row['skip']}")
            continue
        if not card.present:
            row["skip"] = "not measured: its weight files are not on disk"
            rows.append(row)
            print(f"{name}: {row['skip']}")
            continue
        fr = card.mode == "FR"
        pyiqa_name = card.backend.split(":", 1)[1] if card.backend.startswith("pyiqa:") else name
        t0 = time.perf_counter()
        ours = quality.create(name, device=device)
        row["build_s_nriqa"] = time.perf_counter() - t0
        theirs, why = None, None
        if pyiqa_name not in pyiqa.list_models():
            why = "pyiqa has no metric of this name"
        else:
            try:
                with _no_downloads(), contextlib.redirect_stdout(io.StringIO()):  # pyiqa prints "Downloading"
                    t0 = time.perf_counter()
                    theirs = pyiqa.create_metric(pyiqa_name, device=device)
                    row["build_s_pyiqa"] = time.perf_counter() - t0
            except DownloadRefused as exc:
                why = f"pyiqa's metric needs a download ({str(exc).rsplit('/', 1)[-1]})"
        if theirs is None:
            row["pyiqa"] = why
        refs = (ref,) if fr else ()
        calls = {"nriqa": lambda m=ours, r=refs: m(dist, *r),
                 # the same without the finite/[0, 1] checks, which read the frames back to the host
                 "nriqa_nocheck": lambda m=ours, r=refs: m(dist, *r, check_values=False)}
        if theirs is not None:
            calls["pyiqa"] = lambda m=theirs, r=refs: m(dist, *r)
        times = {k: [] for k in calls}
        scores = {}
        with torch.no_grad():
            for i in range(1 + args.eval_repeats):  # first round: warm-up
                for k, call in calls.items():
                    _sync(device)
                    t0 = time.perf_counter()
                    s = call()
                    _sync(device)
                    if i:
                        times[k].append(time.perf_counter() - t0)
                    scores[k] = torch.as_tensor(s).detach().float().reshape(-1).cpu()
        for k, ts in times.items():
            row[f"fps_{k}"] = n / statistics.median(ts)
        if "pyiqa" in scores:
            row["ratio"] = row["fps_nriqa"] / row["fps_pyiqa"]
            row["ratio_nocheck"] = row["fps_nriqa_nocheck"] / row["fps_pyiqa"]
            row["max_abs_score_diff"] = float((scores["nriqa"] - scores["pyiqa"]).abs().max())
            row["score_scale"] = float(scores["pyiqa"].abs().max())
        rows.append(row)
        extra = (f"  pyiqa {row['fps_pyiqa']:.1f} frames/s  nriqa/pyiqa {row['ratio']:.2f}x "
                 f"(unchecked {row['ratio_nocheck']:.2f}x)  "
                 f"max|d score| {row['max_abs_score_diff']:.2g}" if "pyiqa" in scores else f"  pyiqa: {why}")
        print(f"{name}: nriqa {row['fps_nriqa']:.1f} frames/s{extra}", flush=True)
    print(f"\nframes/s = {n} frames / median seconds of {args.eval_repeats} calls (after 1 warm-up call), "
          f"nriqa and pyiqa alternating")
    print("| measure | nriqa frames/s | nriqa, check_values=False | pyiqa frames/s | nriqa / pyiqa | "
          "nriqa unchecked / pyiqa | max abs score difference |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "skip" in row:
            print(f"| {row['name']} | {row['skip']} | | | | | |")
        elif "ratio" in row:
            print(f"| {row['name']} | {row['fps_nriqa']:.1f} | {row['fps_nriqa_nocheck']:.1f} | "
                  f"{row['fps_pyiqa']:.1f} | "
                  f"{row['ratio']:.2f}x | {row['ratio_nocheck']:.2f}x | {row['max_abs_score_diff']:.2g} |")
        else:
            print(f"| {row['name']} | {row['fps_nriqa']:.1f} | {row['fps_nriqa_nocheck']:.1f} | {row['pyiqa']} | "
                  f"| | |")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", default=["step", "eval"], choices=["step", "eval"])
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on CPU)")
    ap.add_argument("--shape", nargs=4, type=int, default=[1, 3, 64, 64], metavar=("B", "T", "H", "W"),
                    help="LR input; BasicSR needs H, W >= 64 (the papers' crop: 1 30 64 64 per GPU)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds before the pairs")
    ap.add_argument("--pairs", type=int, default=3, help="timed rounds (each runs every variant once)")
    ap.add_argument("--nriqa-backends", nargs="+", default=["auto"], choices=["auto", "grid", "torchvision"],
                    help="nriqa deformable-conv backend(s) to time (auto: torchvision on CUDA, grid on CPU)")
    ap.add_argument("--eval-frames", type=int, default=12, help="frames per evaluation call (demo: 3 clips x 4)")
    ap.add_argument("--eval-side", type=int, default=256, help="frame side (demo: LR at most 64 px -> HR 256)")
    ap.add_argument("--eval-repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the raw results to this JSON file")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_vs_basicsr.py: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    if args.pairs < 1 or args.eval_repeats < 1:
        ap.error("--pairs and --eval-repeats must be >= 1")
    print(f"# bench_vs_basicsr: torch {torch.__version__}, {platform.machine()} with {os.cpu_count()} logical "
          f"cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, command: "
          f"python benchmarks/bench_vs_basicsr.py {' '.join(argv if argv is not None else sys.argv[1:])}", flush=True)
    t0 = time.perf_counter()
    result = {}
    if "step" in args.parts:
        step = bench_step(args, device)
        if step is None:
            return 0
        result["step"] = step
    if "eval" in args.parts:
        result["eval"] = bench_eval(args, device)
    print(f"\n{time.perf_counter() - t0:.0f} s in total; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
