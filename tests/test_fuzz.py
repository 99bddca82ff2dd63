"""Property-based fuzzing of nriqa's public entries with hypothesis.

Quality measures (a few cheap offline ones), losses (Charbonnier, QualityLoss, Objective), the VSR
generators (tiny sizes, through the checked entry ``nriqa.models.upscale``) and the profile override
parser get random shapes, dtypes, value ranges, NaN/Inf and sizes around each card's ``min_size``.

The property, everywhere: the call either returns a finite result, or raises a ValueError /
TypeError *raised by nriqa's own code* whose message names the input. Never a silent NaN, never a
raw torch / numpy / yaml error from deep inside. Examples are derandomized (the same on every run)
and the example database is off (nothing is written into the repository).
"""
from __future__ import annotations

import math
import os
import string
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import nriqa
from nriqa import config, quality
from nriqa.losses import Charbonnier, Objective, QualityLoss
from nriqa.models import build, upscale

NRIQA_DIR = Path(nriqa.__file__).resolve().parent
#: NRIQA_FUZZ_RANDOM=1 draws new examples on every run; NRIQA_FUZZ_SCALE=10 draws ten times as many
RANDOM = bool(os.environ.get("NRIQA_FUZZ_RANDOM"))
SCALE = float(os.environ.get("NRIQA_FUZZ_SCALE", "1"))
FUZZ = dict(deadline=None, derandomize=not RANDOM, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def examples(n: int) -> int:
    return max(1, round(n * SCALE))


# ----------------------------------------------------------------------------- the property
def _raised_in_nriqa(err: BaseException) -> bool:
    """True when the innermost frame of the traceback is nriqa's code (a deliberate error)."""
    tb, last = err.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(NRIQA_DIR)


def finite_or_documented(fn, names: tuple[str, ...], what: str):
    """Call ``fn``: a finite tensor / number / dict, or a ValueError/TypeError from nriqa whose message
    contains one of ``names``. Anything else fails the test with the inputs described by ``what``."""
    try:
        out = fn()
    except (ValueError, TypeError) as err:
        assert _raised_in_nriqa(err), f"raw {type(err).__name__} from outside nriqa for {what}: {err}"
        msg = str(err)
        assert any(n in msg for n in names), f"message does not name the input ({names}) for {what}: {msg}"
        event(f"{type(err).__name__}: {msg[:60]}")
        return None
    event("returned")
    if isinstance(out, tuple):  # Objective: (total, terms)
        total, terms = out
        values = [total, *terms.values()]
    elif isinstance(out, torch.Tensor):
        values = [out]
    else:
        return out
    for v in values:
        assert bool(torch.isfinite(v).all()), f"silent non-finite result {v} for {what}"
    return out


# ----------------------------------------------------------------------------- tensors
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8, torch.int64, torch.bool]
FILLS = ["unit", "0..255", "constant", "nan", "inf", "-inf", "slightly negative", "above one", "zeros"]


def make_tensor(shape: tuple[int, ...], dtype: torch.dtype, fill: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    if fill == "0..255":
        x = x * 255
    elif fill == "constant":
        x = torch.full(shape, float(seed % 7) / 6, dtype=torch.float64)
    elif fill == "zeros":
        x = torch.zeros(shape, dtype=torch.float64)
    elif fill == "slightly negative":
        x = x - 1e-2
    elif fill == "above one":
        x = x + 0.5
    elif fill in ("nan", "inf", "-inf") and x.numel():
        x.view(-1)[seed % x.numel()] = float(fill)
    if dtype == torch.bool:
        return x > 0.5
    if not dtype.is_floating_point:
        return x.nan_to_num(0, 255, 0).round().clamp(0, 255).to(dtype)
    return x.to(dtype)


MUTATIONS = ["rank 3", "rank 6", "video", "1 channel", "4 channels", "empty batch", "zero side",
             "below min_size", "tiny side", "dtype", "fill"]


@st.composite
def image_batches(draw, min_size: int, video_ok: bool = True):
    """(x, description): a valid batch (about half the time) or one with one or two mutations: wrong
    rank or channels, empty dims, sides below / around ``min_size``, another dtype, NaN/Inf/0..255."""
    n, c, t = draw(st.integers(1, 2)), 3, draw(st.integers(1, 2))
    side = st.integers(max(1, min_size), min_size + 3)
    h, w = draw(side), draw(side)
    dtype, fill, rank = torch.float32, "unit", 4
    mutations = draw(st.lists(st.sampled_from(MUTATIONS), max_size=2)) if draw(st.booleans()) else []
    for m in mutations:
        if m in ("rank 3", "rank 6") or (m == "video" and video_ok):
            rank = {"rank 3": 3, "rank 6": 6, "video": 5}[m]
        elif m == "1 channel":
            c = 1
        elif m == "4 channels":
            c = 4
        elif m == "empty batch":
            n = 0
        elif m == "zero side":
            h = 0
        elif m == "below min_size":
            w = max(0, min_size - draw(st.integers(1, 2)))
        elif m == "tiny side":
            h = draw(st.integers(1, 3))
        elif m == "dtype":
            dtype = draw(st.sampled_from(DTYPES[1:]))
        elif m == "fill":
            fill = draw(st.sampled_from(FILLS[1:]))
    shape = {3: (c, h, w), 4: (n, c, h, w), 5: (n, t, c, h, w), 6: (1, n, t, c, h, w)}[rank]
    seed = draw(st.integers(0, 2**16))
    return make_tensor(shape, dtype, fill, seed), f"shape={shape} dtype={dtype} fill={fill} seed={seed}"


# ----------------------------------------------------------------------------- measures
MEASURES = ["psnr", "ssim", "gmsd", "vif", "piqe", "niqe-kit", "brisque"]
INPUT_WORDS = ("input x", "reference ref", "ref ", "ref=", "x must", "full-reference", "score of")


@lru_cache(maxsize=None)
def measure(name: str):
    return quality.create(name)


@pytest.mark.parametrize("name", MEASURES)
def test_measures_return_finite_scores_or_name_the_bad_input(name):
    card = quality.card(name)

    @settings(max_examples=examples(200), **FUZZ)
    @given(data=st.data())
    def run(data):
        x, dx = data.draw(image_batches(card.min_size), label="x")
        ref, dref = None, "none"
        if card.mode == "FR":
            same = data.draw(st.booleans(), label="ref like x")
            if same and isinstance(x, torch.Tensor) and x.is_floating_point():
                ref = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)).to(x.dtype)
                dref = "uniform like x"
            else:
                ref, dref = data.draw(image_batches(card.min_size), label="ref")
        checked = data.draw(st.booleans(), label="check_values")
        m = measure(name)
        what = f"{name}(x: {dx}, ref: {dref}, check_values={checked})"
        if not checked:  # the unchecked path promises shapes only; run it on valid values
            if not (x.is_floating_point() and x.numel() and bool(torch.isfinite(x).all()) and x.min() >= 0
                    and x.max() <= 1):
                return
            if ref is not None and not (ref.is_floating_point() and ref.shape == x.shape):
                return
        finite_or_documented(lambda: m(x, ref, check_values=checked), INPUT_WORDS, what)

    run()


# ----------------------------------------------------------------------------- losses
def with_grad(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_(True) if x.is_floating_point() else x


def assert_finite_grad(loss, x: torch.Tensor, what: str) -> None:
    """A loss that returned a value must have a finite input gradient too (no silent NaN in training)."""
    if loss is None or not x.requires_grad:
        return
    total = loss[0] if isinstance(loss, tuple) else loss
    if not total.requires_grad:
        return
    total.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()), f"non-finite input gradient for {what}"


LOSS_WORDS = ("pred", "target", "eps", "tile", "crop", "needs frames", "minimum input size", "objective",
              "weight", "term", "measure", "unknown", "spec", "video measure", "option")


@settings(max_examples=examples(300), **FUZZ)
@given(pred=image_batches(8), target_kind=st.sampled_from(["like pred", "random", "none"]),
       eps=st.sampled_from([1e-6, 1e-3, 0.0, -1.0, math.nan, math.inf, 1e300]))
def test_charbonnier_is_finite_or_names_the_bad_input(pred, target_kind, eps):
    x, dx = pred
    if target_kind == "like pred":
        target = torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) if x.dim() else x
    elif target_kind == "random":
        target = make_tensor((2, 3, 8, 8), torch.float32, "unit", 3)
    else:
        target = None
    what = f"Charbonnier(eps={eps})(pred: {dx}, target: {target_kind})"
    x = with_grad(x)
    assert_finite_grad(finite_or_documented(lambda: Charbonnier(eps)(x, target), LOSS_WORDS, what), x, what)


@st.composite
def quality_loss_args(draw):
    name = draw(st.sampled_from(["ssim", "gmsd", "psnr", "niqe-kit", "niqe", "fsim", "nlpd", "brisque"]))
    opts = {}
    if draw(st.booleans()):
        opts["tile"] = draw(st.sampled_from([None, 0, -3, 8, 11, 16, 48, 64, 2.5, "8"]))
    if draw(st.booleans()):
        opts["crop"] = draw(st.sampled_from([None, 0, 5, 11, 32, 64, 7.0]))
    if draw(st.booleans()):
        opts["upsample_small"] = draw(st.booleans())
    return name, opts


@lru_cache(maxsize=None)
def quality_loss(name: str, opts: tuple):
    return QualityLoss(name, **dict(opts))


@settings(max_examples=examples(300), **FUZZ)
@given(args=quality_loss_args(), pred=image_batches(16), with_target=st.booleans())
def test_quality_loss_is_finite_or_names_the_bad_input(args, pred, with_target):
    name, opts = args
    x, dx = pred
    target = None
    if with_target and x.dim() >= 1:
        target = torch.rand(x.shape, generator=torch.Generator().manual_seed(4)) if x.numel() < 10**6 else None
    what = f"QualityLoss({name!r}, {opts})(pred: {dx}, target: {target is not None})"

    x = with_grad(x)

    def call():
        return quality_loss(name, tuple(sorted(opts.items(), key=lambda kv: kv[0])))(x, target)

    assert_finite_grad(finite_or_documented(call, LOSS_WORDS, what), x, what)


WEIGHTS = st.sampled_from([1.0, 0.5, 0.1, 1.0, 0.0, -1.0, math.nan, math.inf, True, "1", None, [1.0]])


@st.composite
def objective_specs(draw):
    keys = draw(st.lists(st.sampled_from(["charbonnier", "pixel", "ssim", "gmsd", "psnr", "piqe", "gmsdd",
                                          "weights", 3]), min_size=1, max_size=3, unique=True))
    spec = {}
    for k in keys:
        if k == "weights":
            spec[k] = draw(st.sampled_from(["gradnorm", "fixed", 1]))
        elif draw(st.booleans()):
            spec[k] = draw(WEIGHTS)
        else:
            spec[k] = draw(st.sampled_from([{"weight": 1.0}, {"weight": 0.1, "eps": 1e-3}, {"w": 1},
                                            {"weight": 1.0, "tile": 0}, {"weight": 1.0, "crop": 16}]))
    return spec


@settings(max_examples=examples(300), **FUZZ)
@given(spec=objective_specs(), pred=image_batches(16), target_kind=st.sampled_from(["like pred", "none"]))
def test_objective_is_finite_or_names_the_bad_input(spec, pred, target_kind):
    x, dx = pred
    target = None
    if target_kind == "like pred" and x.dim() >= 1 and x.numel() < 10**6:
        target = torch.rand(x.shape, generator=torch.Generator().manual_seed(5))
    what = f"Objective({spec})(pred: {dx}, target: {target_kind})"
    objective = finite_or_documented(lambda: Objective(spec), LOSS_WORDS, what)
    if objective is not None:
        x = with_grad(x)
        assert_finite_grad(finite_or_documented(lambda: objective(x, target), LOSS_WORDS, what), x, what)


# ----------------------------------------------------------------------------- models
@lru_cache(maxsize=None)
def tiny(name: str):
    torch.manual_seed(0)
    return build(name, "tiny").eval()


@st.composite
def lr_batches(draw):
    """Tiny LR clips (B,T,3,h,w), valid about half the time, else with one or two mutations."""
    dims = [draw(st.integers(1, 2)), draw(st.integers(1, 3)), 3, draw(st.integers(1, 6)), draw(st.integers(1, 6))]
    dtype, fill, rank = torch.float32, "unit", 5
    mutations = draw(st.lists(st.sampled_from(["rank 4", "rank 6", "1 channel", "zero dim", "dtype", "fill"]),
                              max_size=2)) if draw(st.booleans()) else []
    for m in mutations:
        if m == "rank 4":
            rank = 4
        elif m == "rank 6":
            rank = 6
        elif m == "1 channel":
            dims[2] = 1
        elif m == "zero dim":
            dims[draw(st.sampled_from([0, 1, 3, 4]))] = 0
        elif m == "dtype":
            dtype = draw(st.sampled_from(DTYPES[1:]))
        else:
            fill = draw(st.sampled_from(FILLS[1:]))
    shape = tuple(dims[1:]) if rank == 4 else tuple(dims) if rank == 5 else tuple(dims + [1])
    seed = draw(st.integers(0, 2**16))
    return make_tensor(shape, dtype, fill, seed), f"shape={shape} dtype={dtype} fill={fill} seed={seed}"


@pytest.mark.parametrize("name", ["basicvsrpp", "iseebetter", "vrt"])
def test_models_upscale_or_name_the_bad_input(name):
    @settings(max_examples=examples(150), **FUZZ)
    @given(lr=lr_batches())
    def run(lr):
        x, dx = lr
        out = finite_or_documented(lambda: upscale(tiny(name), x), ("lr",), f"upscale({name}, lr: {dx})")
        if out is not None:
            b, t, _, h, w = x.shape
            assert out.shape == (b, t, 3, 4 * h, 4 * w) and out.dtype == torch.float32

    run()


# ----------------------------------------------------------------------------- profile overrides
KEYS = st.sampled_from(["train.steps", "data.batch_size", "seed", "train.optimizer.lr", "panel", "data",
                        "train..steps", ".seed", "", " ", "nope.key", "train.objective.ssim", "models",
                        "train.steps.x", "data.lr_patch"])
VALUES = st.text(alphabet=string.printable + "äß€", max_size=12) | st.sampled_from(
    ["1", "-1", "0", "1e-3", "nan", ".inf", "[1, 2]", "{a: 1}", "[", "{", "'", "\"", ": :", "!!python/int 1",
     "&a 1", "*a", "- x", "true", "null", "~", "0x10", "1_000", "2024-01-01", "@", "%", "`", "|", ">"])


@st.composite
def override_lists(draw):
    items = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["kv", "kv", "kv", "text", "other"]))
        if kind == "kv":
            items.append(f"{draw(KEYS)}={draw(VALUES)}")
        elif kind == "text":
            items.append(draw(st.text(alphabet=string.printable, max_size=12)))
        else:
            items.append(draw(st.sampled_from([None, 3, b"seed=1", ("seed", 1)])))
    return items


CONFIG_WORDS = ("override", "=", "profile", "key", "value", "expected", "must")


@settings(max_examples=examples(150), **FUZZ)
@given(overrides=override_lists())
def test_override_parser_returns_a_dict_or_names_the_bad_override(overrides):
    what = f"parse_overrides({overrides!r})"
    out = finite_or_documented(lambda: config.parse_overrides(overrides), CONFIG_WORDS, what)
    assert out is None or isinstance(out, dict)


@settings(max_examples=examples(80), **FUZZ)
@given(overrides=override_lists())
def test_load_profile_returns_a_config_or_names_the_bad_override(overrides):
    what = f"load_profile('demo', {overrides!r})"
    out = finite_or_documented(lambda: config.load_profile("demo", overrides), CONFIG_WORDS, what)
    assert out is None or (isinstance(out, dict) and out["name"] == "demo")
