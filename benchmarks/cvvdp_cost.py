"""What ColorVideoVDP (``cvvdp``, :mod:`nriqa.quality.cvvdp_measure`) costs on the CPU, at the demo's shapes.

    python benchmarks/cvvdp_cost.py                 # torch threads = 1
    python benchmarks/cvvdp_cost.py --threads 2 --repeats 9

Rows (median of ``--repeats`` timed calls after one warm-up call; the first call also builds the
metric's pyramid for the frame size):

- ``score``: one test clip of 4 frames at 256x256 (the evaluation size), no gradient;
- ``loss+backward``: a training batch of 4 clips x 5 frames x 64x64 (the demo's fine-tune crops),
  ``QualityLoss("cvvdp")`` forward and backward to the input.

Frames: windows panning 1 px per frame over scikit-image's ``chelsea`` photo; the distorted clip is its
bicubic 4x down- and up-scale (what a super-resolution output is compared with). Then the smallest
frame sides: the pyramid's band-pass levels and the JOD of the same distortion per side.
Prints a markdown section for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `import nriqa` resolves to this checkout


def pan(frames: int, size: int, clips: int = 1) -> torch.Tensor:
    """``(clips, frames, 3, size, size)`` windows of the chelsea photo, 1 px per frame to the right."""
    import skimage.data

    photo = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float() / 255
    if min(photo.shape[-2:]) < size + frames + clips * 8:
        photo = F.interpolate(photo[None], scale_factor=2 * size / min(photo.shape[-2:]), mode="bilinear",
                              align_corners=False)[0].clamp(0, 1)
    return torch.stack([torch.stack([photo[:, 8 * c: 8 * c + size, t: t + size] for t in range(frames)])
                        for c in range(clips)]).contiguous()


def bicubic_x4(x: torch.Tensor) -> torch.Tensor:
    """Down- and up-scale by 4 (bicubic, antialiased down), clamped to [0, 1]."""
    lead, (h, w) = x.shape[:-3], x.shape[-2:]
    f = x.reshape(-1, *x.shape[-3:])
    lo = F.interpolate(f, size=(h // 4, w // 4), mode="bicubic", antialias=True, align_corners=False)
    return F.interpolate(lo, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1).reshape(*lead, 3, h, w)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call s, median of ``repeats`` further calls s)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per row (median)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from nriqa import quality
    from nriqa.losses import QualityLoss
    from nriqa.quality import cvvdp_measure as cv

    m = quality.create("cvvdp")
    ref = pan(4, 256)
    test = bicubic_x4(ref)
    with torch.no_grad():
        jod = float(m(test, ref))
        first, med = timed(lambda: m(test, ref), a.repeats)
    rows = [("score, 1 clip x 4 frames x 256x256, no grad", first, med, f"{jod:.3f} JOD")]

    loss = QualityLoss("cvvdp")
    ref_b = pan(5, 64, clips=4)
    start = bicubic_x4(ref_b)

    def step() -> float:
        x = start.clone().requires_grad_(True)
        value = loss(x, ref_b)
        value.backward()
        return float(value.detach())

    value = step()
    first, med = timed(step, a.repeats)
    rows.append(("loss+backward, 4 clips x 5 frames x 64x64", first, med, f"loss {value:.4f}"))

    print(f"## ColorVideoVDP (cvvdp {cv.VERSION}, display {cv.DISPLAY}, {cv.FPS:g} fps) on the CPU, "
          f"torch threads = {torch.get_num_threads()}\n")
    print("| row | first call s | median s | value |\n|---|---:|---:|---|")
    for name, f, t, v in rows:
        print(f"| {name} | {f:.3f} | {t:.3f} | {v} |")
    print("\nSmallest frame sides (4-frame clip; bicubic x4 down and up, under 16 px a 2x box down and "
          "nearest up):\n")
    print("| side px | band-pass levels | JOD |\n|---:|---:|---:|")
    for side in (cv.MIN_SIZE, 8, 16, 32, 64, 128, 256):
        r = pan(4, side)
        t = bicubic_x4(r) if side >= 16 else F.interpolate(
            F.avg_pool2d(r.flatten(0, 1), 2), size=(side, side), mode="nearest").reshape(r.shape)
        with torch.no_grad():
            j = float(m(t, r))
        levels = m.net.metric(torch.device("cpu")).lpyr.height
        print(f"| {side} | {levels} | {j:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
