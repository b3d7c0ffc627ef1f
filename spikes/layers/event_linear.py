"""Event-driven fully connected projection of a spike sequence.

``y[t, b] = W x[t, b] + bias`` (``nn.Linear``'s weights), computed from the active inputs only when the input is
sparse: ``y[r] = sum_{k: x[r,k] != 0} x[r,k] W[:, k]`` gathers the columns of W of the non-zero inputs
(compiled loop over a CSR index of the input; ``embedding_bag`` without numba), and backward scatters
``dL/dW[:, k] += x[r,k] dL/dy[r]`` into those columns only (torch's embedding_bag backward sorts all indices,
which costs more than the dense matmul here). With T*B*K
inputs of density d this costs d*T*B*K*N instead of T*B*K*N. Dense (one matmul over T*B rows) when the
density is above ``max_density`` or when the input itself needs a gradient (a hidden layer's spikes under
backprop): embedding_bag gives no gradient for the zero entries.
"""
from __future__ import annotations

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch import nn

from spikes import kernels
from spikes.kernels.numba_events import gather_rows, row_nonzeros, scatter_rows


class EventLinear(nn.Linear):
    """``nn.Linear`` over a sequence ``(T, B, in) -> (T, B, out)`` that skips zero inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, max_density: float = 0.15,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if not 0.0 <= max_density <= 1.0:
            raise ValueError(f"EventLinear max_density must be in [0, 1], got {max_density}")
        self.max_density = max_density

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"EventLinear({self.in_features}, {self.out_features}) got input of shape {tuple(x.shape)}: "
                             f"the last dimension must be {self.in_features}")
        lead = x.shape[:-1]
        rows = x.reshape(-1, self.in_features)
        if x.requires_grad or rows.numel() == 0:
            return F.linear(x, self.weight, self.bias)
        if not _fast(rows, self.weight):
            return _event_linear_torch(x, rows, self.weight, self.bias, self.max_density, lead)
        csr = self.events(x)
        if csr is None:
            return F.linear(x, self.weight, self.bias)
        y = _EventLinearFunction.apply(*csr, self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def events(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The non-zero inputs of the rows of ``x`` (..., in) as CSR (offsets, cols, values in the weight's dtype)
        when the event path applies (compiled kernels, no input gradient, at most ``max_density``), else None."""
        rows = x.reshape(-1, self.in_features)
        if x.requires_grad or rows.numel() == 0 or not _fast(rows, self.weight):
            return None
        kernels.set_threads()
        offsets, cols, values = (torch.from_numpy(a) for a in row_nonzeros(rows.detach().contiguous().numpy()))
        if cols.numel() > self.max_density * rows.numel():
            return None
        return offsets, cols, values.to(self.weight.dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", max_density={self.max_density}"


def _fast(rows: torch.Tensor, weight: torch.Tensor) -> bool:
    return (kernels.available() and rows.device.type == "cpu" and weight.device.type == "cpu"
            and rows.dtype in (torch.float32, torch.float64) and weight.dtype in (torch.float32, torch.float64))


def _event_linear_torch(x, rows, weight, bias, max_density, lead) -> torch.Tensor:
    """Without the compiled kernels: embedding_bag over the non-zero indices (or dense above max_density)."""
    row_idx, cols = rows.nonzero(as_tuple=True)
    if cols.numel() > max_density * rows.numel():
        return F.linear(x, weight, bias)
    counts = torch.bincount(row_idx, minlength=rows.shape[0])
    y = F.embedding_bag(cols, weight.t().contiguous(), torch.cumsum(counts, 0) - counts, mode="sum",
                        per_sample_weights=rows[row_idx, cols].to(weight.dtype))
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, weight.shape[0])


class _EventLinearFunction(torch.autograd.Function):
    """CSR input (offsets, cols, values) times W.T: gather forward, scatter dL/dW backward (numba)."""

    @staticmethod
    def forward(ctx, offsets, cols, values, weight):  # type: ignore[override]
        out = torch.zeros(offsets.numel() - 1, weight.shape[0], dtype=weight.dtype)
        gather_rows(offsets.numpy(), cols.numpy(), values.numpy(), weight.detach().t().contiguous().numpy(), out.numpy())
        ctx.save_for_backward(offsets, cols, values)
        ctx.shape = weight.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        offsets, cols, values = ctx.saved_tensors
        n_out, n_in = ctx.shape
        kernels.set_threads()
        parts = np.zeros((numba.get_num_threads(), n_in, n_out), g.numpy().dtype if g.dtype != torch.float16 else np.float32)
        scatter_rows(offsets.numpy(), cols.numpy(), values.numpy(), g.detach().contiguous().numpy(), parts)
        return None, None, None, torch.from_numpy(parts.sum(0).T.copy())
