"""nriqa.models: registry, input checks, output shapes for odd sizes and short clips."""
from __future__ import annotations

import time

import pytest
import torch

from nriqa.models import available, build, count_parameters, flow_parameters

NAMES = ["basicvsrpp", "iseebetter", "vrt", "vrt16"]


def test_registry_lists_the_generators():
    assert available() == NAMES
    with pytest.raises(ValueError, match="unknown model name"):
        build("edvr")
    with pytest.raises(ValueError, match="unknown size"):
        build("vrt", size="huge")


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {name: build(name, "tiny").eval() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1, 3, 7, 9), (2, 2, 3, 13, 11), (1, 3, 3, 16, 20)])
def test_output_is_4x_for_odd_sizes_and_short_clips(tiny_models, name, shape):
    lr = torch.rand(shape)
    with torch.no_grad():
        hr = tiny_models[name](lr)
    b, t, c, h, w = shape
    assert hr.shape == (b, t, 3, 4 * h, 4 * w)
    assert torch.isfinite(hr).all()


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_rejected_before_compute(tiny_models, name):
    with pytest.raises(ValueError, match=r"\(B,T,3,h,w\)"):
        tiny_models[name](torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B,T,3,h,w\)"):
        tiny_models[name](torch.rand(1, 2, 1, 16, 16))


@pytest.mark.parametrize("name", NAMES)
def test_frames_of_a_batch_are_independent(tiny_models, name):
    """Clip b of the output depends on clip b of the input only (batching is safe)."""
    a, b = torch.rand(1, 3, 3, 12, 12), torch.rand(1, 3, 3, 12, 12)
    with torch.no_grad():
        both = tiny_models[name](torch.cat((a, b)))
        alone = tiny_models[name](a)
    torch.testing.assert_close(both[:1], alone, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_forward_backward_is_fast(name):
    """One forward+backward on (1,5,3,32,32) well under a second of CPU time (1 thread)."""
    torch.manual_seed(0)
    model = build(name, "tiny")
    lr = torch.rand(1, 5, 3, 32, 32)
    model(lr).mean().backward()  # warm-up
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        model(lr).mean().backward()
        best = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert best < 1.0, f"{name} tiny fwd+bwd took {best:.2f} s of CPU time"


def test_flow_parameters_are_the_spynet_parameters(tiny_models):
    for name, model in tiny_models.items():
        flow = flow_parameters(model)
        ids = {id(p) for p in flow}
        assert flow and ids == {id(p) for p in model.spynet.parameters()}
        assert 0 < sum(p.numel() for p in flow) < count_parameters(model)
    assert flow_parameters(torch.nn.Linear(2, 2)) == []
