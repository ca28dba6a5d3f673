"""
The matrix of a PyTorch layer
=============================

``from_torch`` turns a ``torch.nn`` conv or conv-transpose module into its
operator; its matrix applied to a flattened input is the module's output
(minus the bias), and ``.H`` is the exact adjoint, which autograd computes
as the gradient.
"""

import numpy as np
import torch

import toeplitz_conv as tc
from toeplitz_conv.pictures import plot_matrix

torch.manual_seed(0)
module = torch.nn.Conv2d(
    3, 6, kernel_size=3, stride=2, padding=1, groups=3, padding_mode="circular"
).double()
op = tc.from_torch(module, (3, 12, 10))
print(op.summary())

# %%
# The matrix reproduces the module, and its transpose is autograd's gradient.
x = torch.randn(1, 3, 12, 10, dtype=torch.float64, requires_grad=True)
y = module(x)
A = op.tosparse()
bias = module.bias.detach().numpy().repeat(op.output_shape[1] * op.output_shape[2])
print(
    "max |A x + b - module(x)|:",
    np.abs(A @ x.detach().numpy().ravel() + bias - y.detach().numpy().ravel()).max(),
)
g = torch.randn_like(y)
y.backward(g)
print(
    "max |A^T g - autograd|:",
    np.abs(op.H @ g.numpy().ravel() - x.grad.numpy().ravel()).max(),
)

# %%
# A transposed layer too, and the picture of the conv's matrix.
up = torch.nn.ConvTranspose2d(6, 3, kernel_size=4, stride=2, padding=1).double()
op_up = tc.from_torch(up, (6, 6, 5))
z = torch.randn(2, 6, 6, 5, dtype=torch.float64)
print(op_up)
print(
    "max |apply - module|:",
    np.abs(op_up.apply(z.numpy()) - up(z).detach().numpy()).max(),
)
fig = plot_matrix(op)
