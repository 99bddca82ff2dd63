"""ColorVideoVDP (Mantiuk, Hanji, Ashraf, Asano & Chapiro, "ColorVideoVDP: A visual difference predictor
for image, video and display distortions", SIGGRAPH 2024, ACM TOG 43(4), article 129): full-reference,
video, higher is better, in JOD units.

The metric is the ``cvvdp`` 0.5.7 wheel's own code (``pycvvdp.cvvdp``, MIT, PyTorch), called as
``pycvvdp.cvvdp(display_name="standard_4k").predict(test, ref, dim_order="BFCHW", frames_per_second=30)``;
nriqa adds the input checks, the card and the loss mapping. Only the base metric: the package's ML
variants (``cvvdp_ml_saliency``, ``cvvdp_ml_transformer``) download their networks from a model hub and
are left out.

What it computes: the display model turns display-encoded RGB into absolute colour emitted by the
display, then the DKL opponent space (achromatic, red-green, yellow-violet); for video, temporal
filters split the achromatic signal into a sustained and a transient channel; each channel is
decomposed into a Laplacian pyramid of contrast, weighted by a contrast sensitivity function
(castleCSF) and masked, and the differences are pooled over bands, channels and frames into one
quality value per clip in JOD (just-objectionable differences): 10 = no visible difference, lower =
a larger visible difference (it can go below 0 for very strong distortions). A 1 JOD gap between two
conditions means that 75 % of observers prefer the higher one (the package's README).

Choices nriqa makes (all on the card):

- **display**: the package's ``standard_4k`` entry of ``display_models.json``: a 30-inch 4K monitor
  (3840 x 2160), peak luminance 200 cd/m^2, contrast 1000:1, office light (250 lux ambient, 0.5 %
  reflectivity), seen from 0.7472 m (2 x the display height): about 75.4 pixels per visual degree;
- **colour encoding**: frames are RGB in [0, 1], *display-encoded sRGB* (the entry's colour space
  ``sRGB``: sRGB primaries and EOTF); this is how nriqa's frames are stored;
- **frame rate**: :data:`FPS` = 30 frames per second for every clip (the embedded clips carry no
  frame rate; their sources are 24-30 fps video). The temporal filters span 250 ms (9 frames at
  30 fps); the package pads the first frames by repeating frame 0. A one-frame clip is scored as an
  image (no temporal channels, the package's image-integration factor);
- **loss** (lower is better, differentiable): ``(10 - JOD) / 10``, the package's ``cvvdp.loss()``
  (which returns ``10 - JOD``) divided by 10, so 0 = no visible difference and ~1 = 10 JOD lost
  (:func:`nriqa.quality.to_loss` with ``score_range`` (0, 10));
- **minimum size**: :data:`MIN_SIZE` = 4 px. The pyramid has ``min(8, floor(log2(min side)) - 1)``
  band-pass levels plus a base band, so a small frame merges the coarse bands into its base band:
  64 px gives 5 levels (down to about 1.5 cycles/degree at this display's 75.4 px/degree), 256 px 7
  (0.38 cycles/degree), the full 8 from 512 px. At 2-3 px there is no band-pass level at all and at
  1 px the package fails, so 4 px (one level) is the smallest side accepted.

Parameters: the wheel's files ``pycvvdp/vvdp_data/cvvdp_parameters.json`` (the calibrated
parameters; ``internal_model_name`` cvvdp_mult_mutual, calibration date 10/01/2024),
``display_models.json``, ``color_spaces.json`` and ``csf_lut_weber_fixed_size.json`` (the CSF table the
parameters name), located with ``importlib.metadata`` and checked by size and sha256 before use; they
are passed to the package as its ``config_paths``, so ``$CVVDP_PATH`` cannot replace them. Nothing is
downloaded. The parameters were fitted to human quality judgments in JOD units: the paper introduces
the XR-DAVID data set (336 distorted videos, display artifacts) and tests on it and on data sets from
the literature; the wheel's files do not name the calibration data, and the project's ``metrics.md``
says that the parameters up to 0.5.6 are the SIGGRAPH paper's (0.5.7 carries the same calibration date).

The parameters are plain tensors of the package's object (no ``nn.Parameter``): never trained, never
in a generator's module tree. ``predict`` copies its per-channel statistics to the host, so a call
reads back from the device once (also on the trainer's unchecked path).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from nriqa.quality.base import Card, WeightFile, register, verified_path

VERSION = "0.5.7"
DISPLAY = "standard_4k"
FPS = 30.0
MIN_SIZE = 4
JOD_MAX = 10   # the JOD of two identical clips

_PIP = f"pip install cvvdp=={VERSION}"
_DATA = "pycvvdp/vvdp_data"
PARAMETERS_FILE = WeightFile("cvvdp_parameters.json", 1768, _PIP,
                             "ef4dedb44f11f33f509ea3d6d204bb23b03917259b8efbc077009ce53211762b",
                             subdir=_DATA, root="package:cvvdp")
DISPLAYS_FILE = WeightFile("display_models.json", 9258, _PIP,
                           "653979727e809fcd9e44424aff2615d54edde026d9feb17d8f07b7f0ff61b517",
                           subdir=_DATA, root="package:cvvdp")
COLOUR_SPACES_FILE = WeightFile("color_spaces.json", 6475, _PIP,
                                "30ce6752d35672d97a9d7fb7286170915a2ddfe4307782693f9ee176ef9491d1",
                                subdir=_DATA, root="package:cvvdp")
CSF_FILE = WeightFile("csf_lut_weber_fixed_size.json", 110700, _PIP,
                      "df39c869c0c53a9a2cb757811ecaf4ce0d44b4151f5ff9590f5bfe1ede940c18",
                      subdir=_DATA, root="package:cvvdp")
FILES = (PARAMETERS_FILE, DISPLAYS_FILE, COLOUR_SPACES_FILE, CSF_FILE)


def import_pycvvdp():
    """The ``pycvvdp`` module; a clear error naming ``pip install cvvdp==0.5.7`` when it cannot be imported.

    Its import loads ``torch.utils.benchmark``, which imports ``torch.utils.cpp_extension``; on a machine
    with a CUDA toolkit but no CUDA runtime that module logs a warning at import, which is muted here
    (only for that import, its logger's level is restored)."""
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import pycvvdp
    except ImportError as e:
        raise ImportError(f"quality measure 'cvvdp' needs the ColorVideoVDP package: {_PIP} "
                          f"(import pycvvdp failed: {e})") from e
    finally:
        log.setLevel(level)
    return pycvvdp


class ColorVideoVDP(nn.Module):
    """``forward(x, ref) -> (B,)`` JOD of clips ``x`` against ``ref``, both ``(B, T, 3, H, W)``
    display-encoded sRGB in [0, 1] (clamped to it), higher is better (10 = identical).

    Wraps one ``pycvvdp.cvvdp`` object per device (built on first use on that device) with the
    display ``display`` and ``fps`` frames per second; the parameter files are verified first.
    """

    def __init__(self, device: str | torch.device = "cpu", *, display: str = DISPLAY, fps: float = FPS):
        super().__init__()
        self.register_buffer("anchor", torch.zeros(0), persistent=False)  # follows .to(): the device in use
        self.display = display
        self.fps = float(fps)
        self._config = [str(verified_path(w)) for w in FILES]
        self._metrics: dict[str, object] = {}
        self.metric(torch.device(device))  # build now: a bad display name fails at create()

    def metric(self, device: torch.device):
        """The package's metric object on ``device`` (its tensors live there)."""
        key = str(device)
        if key not in self._metrics:
            pycvvdp = import_pycvvdp()
            m = pycvvdp.cvvdp(display_name=self.display, config_paths=list(self._config), device=device, quiet=True)
            m.train(False)  # the package's inference memory model
            self._metrics[key] = m
        return self._metrics[key]

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or ref.shape != x.shape:
            raise ValueError(f"cvvdp: x and ref must be (B,T,3,H,W) clips of one shape, got {tuple(x.shape)} "
                             f"and {tuple(ref.shape)}")
        m = self.metric(x.device)
        jod, _ = m.predict(x.clamp(0, 1), ref.clamp(0, 1), dim_order="BFCHW", frames_per_second=self.fps)
        return jod.reshape(-1)

    def extra_repr(self) -> str:
        return f"display={self.display!r}, fps={self.fps:g}"


def _build(device: str | torch.device = "cpu", **kw) -> ColorVideoVDP:
    return ColorVideoVDP(device=device, **kw)


register(
    Card(name="cvvdp", mode="FR", higher_better=True, score_range=(0, JOD_MAX), differentiable=True,
         min_size=MIN_SIZE, video=True, weights=FILES, backend="cvvdp",
         description=(
             "ColorVideoVDP (Mantiuk et al., SIGGRAPH 2024, ACM TOG 43(4)): colour, spatio-temporal visible "
             "difference predictor in JOD (10 = no visible difference, below 0 possible); cvvdp 0.5.7 wheel's "
             "code and files pycvvdp/vvdp_data/{cvvdp_parameters,display_models,color_spaces,"
             "csf_lut_weber_fixed_size}.json, parameters calibrated on human quality judgments in JOD; display "
             "standard_4k: 30-inch 3840x2160, 200 cd/m^2 peak, 1000:1, 250 lux, viewed from 0.7472 m (about "
             "75.4 px/degree); frames display-encoded sRGB at 30 fps; loss (10 - JOD) / 10 = the package's "
             "loss() / 10; min 4 px (the pyramid's depth grows with the frame side up to 512 px)")),
    _build,
)
