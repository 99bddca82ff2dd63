"""nriqa: can no-reference IQA models serve as perceptual losses for video super-resolution?

Thin package behind the notebooks in ``notebooks/``:

- :mod:`nriqa.data`      embedded clips, folder datasets, degradations, samplers
- :mod:`nriqa.models`    VSR generators, SpyNet, discriminators
- :mod:`nriqa.quality`   every IQA measure behind one registry (raw scores + cards)
- :mod:`nriqa.losses`    lower-is-better objectives built from measures
- :mod:`nriqa.train`     the trainer (GPU first, CPU works), checkpoints, EMA
- :mod:`nriqa.analysis`  evaluation panel, relative gain, artifact measures, asymmetry
- :mod:`nriqa.viz`       figures and widgets

Conventions: video ``(B, T, C, H, W)``, images ``(N, C, H, W)``, float32 RGB in ``[0, 1]``.
"""
__version__ = "0.1.0"

import os as _os

from nriqa.compute import pin_cpu_kernels as _pin_cpu_kernels

_pin_cpu_kernels()  # the same CPU kernels (AVX2) on every x86-64 machine: the same float results

if _os.environ.get("NRIQA_BATCH", "").strip() not in ("", "0"):
    # ``python -m nriqa run`` executes notebooks in kernels nobody watches: progress bars of
    # ``tqdm.auto`` are plain text there (readable in the saved notebook and streamed to the
    # terminal by the runner), not widgets that a saved notebook shows stuck at 0.
    import tqdm.auto as _auto
    import tqdm.std as _std

    _auto.tqdm, _auto.trange = _std.tqdm, _std.trange
