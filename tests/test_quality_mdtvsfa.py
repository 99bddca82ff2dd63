"""nriqa.quality.mdtvsfa: loads created weight files offline, scores video, pools over time by definition."""
from __future__ import annotations

import pytest
import torch
from doubles import save_torch

from nriqa import quality as q


def _mdtvsfa_files(seed=0):
    import torchvision

    from nriqa.quality.mdtvsfa import QualityHead

    torch.manual_seed(seed)
    head = QualityHead().state_dict()
    head = {k: torch.randn_like(v) * 0.1 for k, v in head.items()}
    save_torch(head, q.card("mdtvsfa").weights[0].path)
    save_torch(torchvision.models.resnet50(weights=None).state_dict(), q.card("mdtvsfa").weights[1].path)
    return head


def test_mdtvsfa_loads_created_files_and_scores_video(offline_home):
    with pytest.raises(q.WeightsMissingError, match="MDTVSFA.pt"):
        q.create("mdtvsfa")
    head = _mdtvsfa_files()
    m = q.create("mdtvsfa")
    got = m.net.head.state_dict()
    assert all(torch.equal(got[k], head[k]) for k in head)
    video = torch.rand(2, 3, 3, 64, 64)
    s = m(video)
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
    with pytest.raises(ValueError, match="video measure"):
        m(video[0])
    with pytest.raises(ValueError, match="at least 64x64"):
        m(video[..., :32, :32])
    v = video.clone().requires_grad_(True)
    m(v).sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0


def test_temporal_pooling_matches_definition():
    from nriqa.quality.mdtvsfa import temporal_pooling

    torch.manual_seed(0)
    qs = torch.randn(2, 17)
    tau, beta = 12, 0.5
    want = []
    for row in qs:
        per_frame = []
        for t in range(len(row)):
            memory = row[max(0, t - tau + 1): t + 1].min()
            fut = row[t: t + tau]
            w = torch.exp(-fut)
            per_frame.append(beta * (fut * w).sum() / w.sum() + (1 - beta) * memory)
        want.append(torch.stack(per_frame).mean())
    assert torch.allclose(temporal_pooling(qs, tau, beta), torch.stack(want), atol=1e-6)
    # a single bad stretch pulls the clip score below the plain mean (recency/min effect)
    flat = torch.zeros(1, 30)
    dip = flat.clone()
    dip[0, 10:13] = -2.0
    assert temporal_pooling(dip) < dip.mean()
