"""Forward+backward speed and peak memory of the nriqa VSR generators.

    python benchmarks/bench_models.py                         # tiny sizes, (1,5,3,32,32), CPU
    python benchmarks/bench_models.py --sizes tiny paper --repeats 2
    python benchmarks/bench_models.py --reference-dir /tmp/ref   # + our/reference time ratio

Each (model, size) runs in a fresh subprocess so that peak memory is its own: on CPU the
growth of peak RSS over the RSS after building the model; on CUDA
``torch.cuda.max_memory_allocated`` (bf16 autocast + channels_last, as the trainer uses).
frames/s = B*T / (median wall seconds of one forward+backward); the process CPU time is
reported too (on a shared CPU it is the steadier number). ``--reference-dir`` points at a
scratch folder holding the authors' code (never committed; see BENCHMARKS.md): the reference
model gets our weights (converted) and is timed the same way, alternating with ours.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _reference(name: str, ours: torch.nn.Module, ref_dir: str):
    """Build the authors' model with our weights; returns a callable lr -> hr, or None."""
    from nriqa.models.convert import to_reference_state_dict

    sys.path[:0] = [f"{ref_dir}/bsr", f"{ref_dir}/rbpn", ref_dir]
    if name == "basicvsrpp":
        from basicsr.archs.basicvsrpp_arch import BasicVSRPlusPlus as Ref

        c = ours.mid_channels
        ref = Ref(mid_channels=c, num_blocks=len(ours.backbone["backward_1"].blocks), is_low_res_input=True)
    elif name == "vrt":
        from network_vrt import VRT as Ref  # REDS x4 6-frame settings: paper size only

        ref = Ref(upscale=4, img_size=[6, 64, 64], window_size=[6, 8, 8], depths=[8] * 7 + [4] * 6,
                  indep_reconsts=[11, 12], embed_dims=[120] * 7 + [180] * 6, num_heads=[6] * 13,
                  pa_frames=2, deformable_groups=12)
    elif name == "iseebetter":
        from rbpn import Net

        net = Net(num_channels=3, base_filter=256, feat=64, num_stages=3, n_resblock=5, nFrames=7,
                  scale_factor=4)
        net.load_state_dict(to_reference_state_dict(name, ours))

        def ref(lr):  # same batching of targets and flows as ours, then the reference net
            b, t, c, h, w = lr.shape
            centre = lr.reshape(b * t, c, h, w)
            idx = torch.arange(t)
            nbs = []
            for o in ours.neighbour_offsets():
                j = idx + o
                j = torch.where((j < 0) | (j >= t), idx, j)
                nbs.append(lr[:, j].reshape(b * t, c, h, w))
            flows = ours.spynet(centre.repeat(len(nbs), 1, 1, 1), torch.cat(nbs)).chunk(len(nbs))
            return net(centre, nbs, list(flows)).view(b, t, 3, 4 * h, 4 * w)
        ref.parameters = net.parameters
        return ref
    else:
        return None
    ref.load_state_dict(to_reference_state_dict(name, ours), strict=False)
    return ref


def _measure(name: str, size: str, shape: tuple, repeats: int, device: str, ref_dir: str | None, q) -> None:
    try:
        q.put(_measure_row(name, size, shape, repeats, device, ref_dir))
    except Exception as exc:  # report, never hang the parent
        q.put(dict(model=name, size=size, error=f"{type(exc).__name__}: {exc}"[:300]))


def _measure_row(name: str, size: str, shape: tuple, repeats: int, device: str, ref_dir: str | None) -> dict:
    from nriqa.models import build, count_parameters

    torch.manual_seed(0)
    cuda = device.startswith("cuda")
    model = build(name, size).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    lr = torch.rand(shape, device=device)

    def step(net):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = net(lr)
        out.float().mean().backward()
        if cuda:
            torch.cuda.synchronize()

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    step(model)  # warm-up
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step(model)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    peak = (torch.cuda.max_memory_allocated() if cuda else
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) * 1024)
    row = dict(model=name, size=size, device=device, shape=list(shape), params=count_parameters(model),
               seconds=statistics.median(times), cpu_seconds=statistics.median(cpu_times),
               frames_per_s=shape[0] * shape[1] / statistics.median(times),
               peak_mem_mb=peak / 2 ** 20, threads=torch.get_num_threads())
    if ref_dir and not cuda and size == "paper":  # the references hard-code paper-only parts
        ref = _reference(name, model, ref_dir)
        if ref is not None:
            rt, ot = [], []
            for _ in range(repeats):  # alternate to share the machine's load fairly
                for net, acc in ((ref, rt), (model, ot)):
                    t0 = time.perf_counter()
                    step(net)
                    acc.append(time.perf_counter() - t0)
            row["ours_over_reference"] = statistics.median(ot) / statistics.median(rt)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["basicvsrpp", "iseebetter", "vrt"])
    p.add_argument("--sizes", nargs="+", default=["tiny"])
    p.add_argument("--shape", nargs=5, type=int, default=[1, 5, 3, 32, 32], metavar=("B", "T", "C", "H", "W"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reference-dir", default=None, help="scratch folder with the authors' code")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")
    rows = []
    for size in args.sizes:
        for name in args.models:
            q = ctx.Queue()
            proc = ctx.Process(target=_measure, args=(name, size, tuple(args.shape), args.repeats,
                                                      args.device, args.reference_dir, q))
            proc.start()
            row = q.get()
            proc.join()
            rows.append(row)
            if "error" in row:
                print(f"{name:11s} {size:6s} FAILED {row['error']}", flush=True)
                continue
            ratio = f"  ours/ref {row['ours_over_reference']:.2f}" if "ours_over_reference" in row else ""
            print(f"{name:11s} {size:6s} {row['device']:5s} params {row['params']:>10,d}  "
                  f"{row['seconds']:.3f} s/iter (cpu {row['cpu_seconds']:.3f} s)  {row['frames_per_s']:7.2f} frames/s  "
                  f"peak {row['peak_mem_mb']:8.1f} MB{ratio}", flush=True)
    if args.json:
        from nriqa.paths import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
