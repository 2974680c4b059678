"""LeNet of the blog experiment: shapes, parameter counts worked by hand, and where the norms sit."""

from __future__ import annotations

import pytest
import torch

from lrn_ablate.models import build_model, norm_channel_counts

LENET = {"name": "lenet", "conv_channels": [6, 16], "fc_features": [120, 84]}
NORMS = {
    "none": {"name": "none"},
    "lrn": {"name": "lrn", "size": 2, "alpha": 1e-4, "beta": 0.75, "k": 1.0, "convention": "pytorch",
            "region": "across"},
    "bn": {"name": "bn", "eps": 1e-5, "momentum": 0.1},
    "ln": {"name": "ln", "eps": 1e-5},
    "in": {"name": "in", "eps": 1e-5, "affine": True},
    "gn": {"name": "gn", "groups": 2, "eps": 1e-5},
}


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (1, 32), (3, 32)])
def test_output_shape(norm, channels, size):
    model = build_model(LENET, NORMS[norm], channels, size, 10)
    assert model(torch.randn(4, channels, size, size)).shape == (4, 10)


def test_parameter_count_matches_the_architecture_worked_by_hand():
    # conv1 3*6*25+6, conv2 6*16*25+16, fc 400*120+120, 120*84+84, 84*10+10
    expected = 456 + 2416 + 48120 + 10164 + 850
    assert sum(p.numel() for p in build_model(LENET, NORMS["none"], 3, 32, 10).parameters()) == expected
    # 28x28 grey: conv1 1*6*25+6, flattened 16*4*4=256 features
    expected_28 = 156 + 2416 + (256 * 120 + 120) + 10164 + 850
    assert sum(p.numel() for p in build_model(LENET, NORMS["none"], 1, 28, 10).parameters()) == expected_28


def test_norm_slots_are_before_relu1_and_after_relu2():
    model = build_model(LENET, NORMS["bn"], 3, 32, 10)
    seen = {}
    model.norm1.register_forward_hook(lambda m, i, o: seen.__setitem__("norm1_in", i[0]))
    model.norm2.register_forward_hook(lambda m, i, o: seen.__setitem__("norm2_in", i[0]))
    model.conv1.register_forward_hook(lambda m, i, o: seen.__setitem__("conv1_out", o))
    model(torch.randn(8, 3, 32, 32))
    assert torch.equal(seen["norm1_in"], seen["conv1_out"])  # straight from conv1, before the ReLU
    assert (seen["norm1_in"] < 0).any()
    assert (seen["norm2_in"] >= 0).all()  # after relu(conv2)
    assert seen["norm1_in"].shape[1:] == (6, 28, 28) and seen["norm2_in"].shape[1:] == (16, 10, 10)


def test_layer_norm_normalizes_each_sample_over_c_h_w():
    torch.manual_seed(0)
    norm = build_model(LENET, NORMS["ln"], 3, 32, 10).norm2
    x = torch.randn(2, 16, 10, 10) * 3 + 1
    expected = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / torch.sqrt(
        x.var(dim=(1, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_norm_channel_counts_of_lenet():
    assert norm_channel_counts(LENET) == [6, 16]
