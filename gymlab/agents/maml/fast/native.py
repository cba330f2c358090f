"""The C code of the Gaussian MLP's meta-update: built on first use, called through ctypes.

passes.c holds the mean network's forward and backward passes (`ForwardPass`, `backward`)
and the first layer's sums of an inner step (`first_layer_sums`, gaussian_mlp.FirstLayer);
sweeps.c the two sweeps that make nearly all of a KL Hessian product's work: the inner
loss's Hessian product (`inner_hessian_product`) and J_f^T M J_f on the valid episodes
(`jacobian_gram`). Both run over tiles of one task's steps so that the intermediates stay
in the cache, on kernels.h's AVX2/FMA matrix kernel; gaussian_mlp.py's torch ops compute
the same numbers (to float32 rounding) one whole tensor at a time. benchmarks/maml.py
--parts speed,training compares the two.

Used for float32 CPU tensors when the CPU has AVX2 and FMA and a C compiler (`$CC`, else
`cc`) builds the files; otherwise, or with GYMLAB_NATIVE=0, the torch ops run. The library
is cached under $GYMLAB_CACHE (default ~/.cache/gymlab), named by a hash of the sources and
the flags, so edited sources are rebuilt.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import warnings
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Protocol

import torch

from gymlab.agents.maml.policy import Params

Tensor = torch.Tensor
SOURCE_DIR = Path(__file__).parent
"""Where the C sources are: they ship inside the package (package data)."""
SOURCES = ("sweeps.c", "passes.c")
HEADERS = ("kernels.h",)
FLAGS = ("-O3", "-mavx2", "-mfma", "-shared", "-fPIC")


class Forward(Protocol):
    """What the C code reads of a kept forward pass (gaussian_mlp.Forward)."""

    inputs: list[Tensor]
    slopes: list[Tensor]
    free: Tensor


class InnerStep(Protocol):
    """What the C code reads of a kept inner step (gaussian_mlp.InnerStep)."""

    params: Params
    fwd: Forward
    coeff: Tensor
    diff: Tensor
    scaled: Tensor
    inv_var: Tensor
    deltas: list[Tensor]
    d_inputs: list[Tensor]
    tanh: bool
    first_layer: Any
    """gaussian_mlp.FirstLayer (its sums t and u) or None."""


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymlab"
    return Path(os.environ.get("GYMLAB_CACHE", default))


def build() -> Path:
    """Compile sweeps.c and passes.c (once per source text and flags, from SOURCE_DIR);
    the shared library's path. Raises OSError or subprocess.CalledProcessError when it cannot."""
    compiler = os.environ.get("CC", "cc")
    path = shutil.which(compiler)
    if path is None:
        raise OSError(f"no C compiler {compiler!r} on PATH")
    key = hashlib.sha256(" ".join((compiler, *FLAGS)).encode())
    for name in (*SOURCES, *HEADERS):
        key.update((SOURCE_DIR / name).read_bytes())
    target = cache_dir() / f"sweeps-{key.hexdigest()[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.stem}.{os.getpid()}.partial")
        subprocess.run([path, *FLAGS, *(str(SOURCE_DIR / n) for n in SOURCES), "-o",
                        str(partial)], check=True, capture_output=True, timeout=300)
        os.replace(partial, target)  # atomic: concurrent builds each land a whole file
    return target


@cache
def library() -> ctypes.CDLL | None:
    """The built library, or None (torch path) where it is switched off, the CPU lacks
    AVX2/FMA, or it does not build (with a warning saying why)."""
    if os.environ.get("GYMLAB_NATIVE", "1") == "0":
        return None
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return None
    try:
        return ctypes.CDLL(str(build()))
    except (OSError, subprocess.SubprocessError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[:500]
        warnings.warn(f"gymlab: MAML's fused C sweeps did not build, so the slower "
                      f"torch path runs: {error} {detail}", RuntimeWarning, stacklevel=2)
        return None


def usable(like: Tensor) -> bool:
    """Whether the sweeps run for tensors like `like` (float32, on the CPU)."""
    return like.dtype == torch.float32 and like.device.type == "cpu" and library() is not None


def call(name: str, *args) -> None:
    """The library's function `name` (each returns 0, -1 when out of memory, -2 for shapes
    it does not take); every Tensor argument is passed as its data pointer, every list as
    an array of them (None: NULL), every int as a C long (the C scalars are longs)."""
    def convert(a):
        if isinstance(a, ctypes.Array):
            return a
        if isinstance(a, list):
            return (ctypes.c_void_p * len(a))(*[convert(t).value for t in a])
        if isinstance(a, Tensor):
            if not (a.is_contiguous() and a.dtype == torch.float32):
                raise TypeError(f"{name} takes contiguous float32 tensors")
            return ctypes.c_void_p(a.data_ptr())
        return ctypes.c_void_p(None) if a is None else ctypes.c_long(a)

    code = getattr(library(), name)(*[convert(a) for a in args])
    if code == -1:
        raise MemoryError(f"MAML's C sweeps, {name}: out of memory")
    if code != 0:
        raise ValueError(f"MAML's C sweeps: {name} does not take these shapes (code {code})")


def widths(width: list[int]) -> ctypes.Array:
    return (ctypes.c_int * len(width))(*width)


def rows_of(t: Tensor) -> Tensor:
    """[K, N, width] (any leading step shape), contiguous."""
    return t.reshape(t.shape[0], -1, t.shape[-1]).contiguous()


def contiguous(tensors: list[Tensor | None]) -> list[Tensor | None]:
    return [None if t is None else t.contiguous() for t in tensors]


def transposed(tensors: list[Tensor]) -> list[Tensor]:
    return [t.mT.contiguous() for t in tensors]


class Layers:
    """The MLP's weights (and a direction's) per layer, their transposes and buffers for a
    sweep's gradients, as the C functions take them; each made when first asked for."""

    def __init__(self, layers: list[str], params: Params, direction: Params | None = None
                 ) -> None:
        self.names = layers
        self.weights = contiguous([params[n + ".weight"] for n in layers])
        if direction is not None:
            self.d_weights = contiguous([direction[n + ".weight"] for n in layers])
            self.d_biases = contiguous([direction[n + ".bias"] for n in layers])
        self.width = [self.weights[0].shape[2]] + [w.shape[1] for w in self.weights]

    @cached_property
    def weights_t(self) -> list[Tensor]:
        return transposed(self.weights)

    @cached_property
    def d_weights_t(self) -> list[Tensor]:
        return transposed(self.d_weights)

    @cached_property
    def g_w(self) -> list[Tensor]:
        return [torch.empty_like(w) for w in self.weights]

    @cached_property
    def g_b(self) -> list[Tensor]:
        return [w.new_empty(w.shape[:2]) for w in self.weights]

    def shape(self) -> tuple[int, ctypes.Array]:
        return len(self.names), widths(self.width)

    def grads(self) -> Params:
        out: Params = {}
        for name, g_w, g_b in zip(self.names, self.g_w, self.g_b):
            out[name + ".weight"], out[name + ".bias"] = g_w, g_b
        return out


class ForwardPass:
    """GaussianMLP.forward's pass at fixed parameters, as often as needed (the sampler's
    every time step): obs [K, N, d] -> each hidden layer's output and slope, and the mean."""

    def __init__(self, layers: list[str], params: Params, tanh: bool) -> None:
        self.net, self.tanh = Layers(layers, params), tanh
        self.biases = contiguous([params[n + ".bias"] for n in layers])

    def __call__(self, obs: Tensor) -> tuple[list[Tensor], list[Tensor], Tensor]:
        obs, width = rows_of(obs), self.net.width
        tasks, rows = obs.shape[:2]
        hidden = [obs.new_empty(tasks, rows, n) for n in width[1:-1]]
        slopes = [torch.empty_like(h) for h in hidden]
        mean = obs.new_empty(tasks, rows, width[-1])
        call("forward", tasks, rows, *self.net.shape(), obs, self.net.weights,
             self.net.weights_t, self.biases, int(self.tanh), hidden, slopes, mean)
        return hidden, slopes, mean


def backward(layers: list[str], params: Params, fwd: Forward, d_mean: Tensor, keep: bool
             ) -> tuple[Params, list[Tensor], list[Tensor]]:
    """GaussianMLP.backward's pass for the mean's parameters: the gradients and, if
    `keep`, each layer's dL/dz (d_mean the last) and each hidden layer's dL/dh."""
    net, d_mean = Layers(layers, params), rows_of(d_mean)
    tasks, rows = d_mean.shape[:2]
    slopes = contiguous(fwd.slopes)
    deltas = [torch.empty_like(s) for s in slopes] if keep else None
    d_hidden = [torch.empty_like(s) for s in slopes] if keep else None
    call("backward", tasks, rows, *net.shape(), contiguous(fwd.inputs), slopes, net.weights,
         d_mean, net.g_w, net.g_b, deltas, d_hidden)
    return net.grads(), (deltas or []) + [d_mean], d_hidden or []


def inner_hessian_product(layers: list[str], step: InnerStep, w: Params) -> Params:
    """gaussian_mlp.inner_hessian_product's H w per task."""
    fwd, first = step.fwd, step.first_layer
    net = Layers(layers, step.params, w)
    tasks, rows = fwd.inputs[0].shape[:2]
    r_log_std = (w["log_std"] * fwd.free).contiguous()
    g_log_std = torch.empty_like(r_log_std)
    call("hessian_product", tasks, rows, *net.shape(), contiguous(fwd.inputs),
         contiguous(fwd.slopes), contiguous(step.deltas), contiguous(step.d_inputs),
         int(step.tanh), net.weights, net.weights_t, net.d_weights, net.d_weights_t,
         net.d_biases, step.coeff.contiguous(),
         step.inv_var.reshape(tasks, -1).contiguous(), rows_of(step.scaled),
         rows_of(step.diff), r_log_std, *contiguous([None, None] if first is None
                                                    else [first.t, first.u]),
         net.g_w, net.g_b, g_log_std)
    hw = net.grads()
    hw["log_std"] = 2 * fwd.free * g_log_std
    return hw


def first_layer_sums(step: InnerStep) -> tuple[Tensor, Tensor | None]:
    """gaussian_mlp.FirstLayer's t and u (None for ReLU) of an inner step."""
    obs, slope, delta = rows_of(step.fwd.inputs[0]), step.fwd.slopes[0], step.deltas[1]
    tasks, rows, d = obs.shape
    width = [d, slope.shape[-1], delta.shape[-1]]
    t = obs.new_empty(tasks, width[2], width[1], d + 1)
    u = obs.new_empty(tasks, width[1], d + 1, d + 1) if step.tanh else None
    call("first_layer_sums", tasks, rows, widths(width), obs,
         *contiguous([slope, step.fwd.inputs[1], step.d_inputs[0], delta]), t, u)
    return t, u


def output_jacobians(layers: list[str], params: Params, fwd: Forward) -> list[Tensor]:
    """d mu / d z_l per step, [K, N, A, width], of hidden layers 0..len(layers) - 3 (the
    last hidden layer's, W_L diag(act'), is made in the sweep): `jacobian_gram`'s
    constants, (P_{l+1} W_{l+1}) diag(act'(z_l)) from the top down."""
    weights = [params[n + ".weight"] for n in layers]
    if len(layers) < 3:
        return []
    p = weights[-1].unsqueeze(1) * fwd.slopes[-1].unsqueeze(2)
    jacobians = []
    for i in range(len(layers) - 2, 0, -1):
        tasks, steps, act, width = p.shape
        p = torch.bmm(p.reshape(tasks, steps * act, width), weights[i]).view(
            tasks, steps, act, -1) * fwd.slopes[i - 1].unsqueeze(2)
        jacobians.insert(0, p)
    return jacobians


def jacobian_gram(layers: list[str], params: Params, fwd: Forward, jacobians: list[Tensor],
                  w: Params, step_weight: Tensor, inv_var: Tensor) -> Params:
    """J_f^T diag(step_weight / sigma^2) J_f w for the mean's parameters (`fwd` a Forward
    of `params`, `jacobians` its `output_jacobians`), per task; step_weight [K, N, 1],
    inv_var [K, 1, A]."""
    net = Layers(layers, params, w)
    tasks, rows = fwd.inputs[0].shape[:2]
    call("jacobian_gram", tasks, rows, *net.shape(), contiguous(fwd.inputs),
         contiguous(fwd.slopes), jacobians, net.weights[-1], net.d_weights, net.d_weights_t,
         net.d_biases, step_weight.contiguous(), inv_var.reshape(tasks, -1).contiguous(),
         net.g_w, net.g_b)
    return net.grads()
