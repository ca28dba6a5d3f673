"""from_torch against the modules themselves."""

import numpy as np
import pytest
import torch

import toeplitz_conv as tc


@pytest.mark.parametrize(
    "module, spatial",
    [
        (torch.nn.Conv1d(3, 4, 5, stride=2, padding=2, dilation=1, padding_mode="reflect"), (17,)),
        (torch.nn.Conv2d(4, 6, (3, 2), padding="same", groups=2, padding_mode="circular"), (8, 7)),
        (torch.nn.Conv2d(2, 3, 3, stride=(2, 1), dilation=(1, 2), bias=False), (9, 10)),
        (torch.nn.Conv3d(2, 2, 3, padding=1, padding_mode="replicate"), (4, 5, 3)),
        (torch.nn.Conv2d(3, 3, 3, padding="valid", groups=3), (6, 6)),
    ],
)
def test_from_torch_apply_equals_module(module, spatial):
    module = module.double()
    x = torch.randn(2, module.in_channels, *spatial, dtype=torch.float64)
    op = tc.from_torch(module, (module.in_channels, *spatial))
    assert isinstance(op, tc.Conv)
    assert op.dtype == np.float64
    np.testing.assert_allclose(op.apply(x.numpy()), module(x).detach().numpy(), atol=1e-12)


def test_from_torch_keeps_float32():
    module = torch.nn.Conv2d(2, 2, 3)
    op = tc.from_torch(module, (2, 5, 5))
    assert op.dtype == np.float32
    x = torch.randn(2, 5, 5)
    np.testing.assert_allclose(op.apply(x.numpy()), module(x).detach().numpy(), atol=1e-5)


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="module must be a torch.nn Conv"):
        tc.from_torch(torch.nn.Linear(2, 2), (2,))
