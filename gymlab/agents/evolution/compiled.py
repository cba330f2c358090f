"""CartPole populations in compiled code: each (network, episode) pair runs to its end in one
loop, MLP forward and CartPole dynamics in scalars.

Why: in numpy, a lockstep iteration pays a fixed call overhead whatever the batch size, so
a generation that ends in a few 10,000-step episodes is bound by that overhead, and every
worker pays it in full. Compiled, a generation's cost is proportional to the steps it takes,
so it splits over threads: the kernel releases the GIL, and `--workers` threads share the
networks with no process start-up (benchmarks/neuroevolution.py measures both).

Two builds of one kernel: cartpole.c (built on first use by gymlab.core.native and loaded
with ctypes, which costs milliseconds where numba's import and cache load cost a second of
a short run's start-up), else, without a C compiler or with GYMLAB_NATIVE=0, the numba
function below, which is the reference the C code follows. Both give the same numbers as
`CartPoleBatch` (gymnasium's float64 operations in gymnasium's order; the observation the
policy sees is the float32 one), checked episode by episode against
`gym.make("CartPole-v1")` in the tests. numba is imported only when it is used.
"""

from __future__ import annotations

import ctypes
import math
import subprocess
import warnings
from collections.abc import Callable
from concurrent.futures import Executor, as_completed, wait
from pathlib import Path
from typing import Any

import numpy as np

from gymlab.agents.evolution.policy import ActionHead, MLPSpec, ObsNorm
from gymlab.agents.evolution.vector_envs import BatchedEnv, CartPoleBatch
from gymlab.core import native

ACTIVATIONS = {"relu": 0, "tanh": 1, "elu": 2, "silu": 3, "linear": 4}
_kernel: Any = None


def supports(env: BatchedEnv, head: ActionHead) -> bool:
    """Whether a population on `env` with `head` can run in the compiled kernel."""
    return isinstance(env, CartPoleBatch) and head.kind == "discrete" and head.start == 0


C_SOURCE = Path(__file__).with_name("cartpole.c")
C_FLAGS = ("-O3", "-fno-tree-slp-vectorize", "-ffp-contract=off", "-shared", "-fPIC")
"""No fused multiply-adds and no basic-block vectorisation: either changes how float64
results round (numba's and numpy's results are the reference)."""


def _compile() -> Any:
    """The kernel: the C build where it builds, else numba's (same arguments, same numbers)."""
    global _kernel
    if _kernel is None:
        _kernel = _c_kernel() if native.enabled() else None
    if _kernel is None:
        from numba import njit

        _kernel = njit(cache=True, nogil=True)(_cartpole_episodes)
    return _kernel


def _c_kernel() -> Callable[..., None] | None:
    try:
        function = native.load("cartpole", [C_SOURCE], C_FLAGS).cartpole_episodes
    except (OSError, subprocess.SubprocessError) as error:
        detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[:300]
        warnings.warn(f"gymlab: the C CartPole kernel did not build, numba's runs: {error} "
                      f"{detail}", RuntimeWarning, stacklevel=3)
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    function.restype = ctypes.c_int
    function.argtypes = [ptr, i64, ptr, i64, i64, ptr, i64, ptr, i64, i64, ptr, ptr,
                         ctypes.c_double, i64, i64, ptr, ptr, ptr, ptr]

    def kernel(params: np.ndarray, sizes: np.ndarray, activation: int, networks: np.ndarray,
               starts: np.ndarray, max_steps: int, norm_mean: np.ndarray,
               norm_std: np.ndarray, clip: float, use_norm: bool, obs_stats: bool,
               returns: np.ndarray, lengths: np.ndarray, obs_sum: np.ndarray,
               obs_sq_sum: np.ndarray) -> None:
        networks = np.ascontiguousarray(networks, dtype=np.int64)
        code = function(params.ctypes.data, params.shape[1], sizes.ctypes.data, len(sizes),
                         activation, networks.ctypes.data, len(networks), starts.ctypes.data,
                         len(starts), max_steps, norm_mean.ctypes.data, norm_std.ctypes.data,
                         clip, use_norm, obs_stats, returns.ctypes.data, lengths.ctypes.data,
                         obs_sum.ctypes.data, obs_sq_sum.ctypes.data)
        if code != 0:
            raise MemoryError("the C CartPole kernel ran out of memory")

    return kernel


def _cartpole_episodes(params: np.ndarray, sizes: np.ndarray, activation: int,
                       networks: np.ndarray, starts: np.ndarray, max_steps: int,
                       norm_mean: np.ndarray, norm_std: np.ndarray, clip: float,
                       use_norm: bool, obs_stats: bool, returns: np.ndarray,
                       lengths: np.ndarray, obs_sum: np.ndarray, obs_sq_sum: np.ndarray) -> None:
    """For each row p in `networks`: network params[p] plays every start state [K, 4];
    writes returns[p], lengths[p] and (obs_stats) the sums of the observations it acted on
    and of their squares. The constants and the order of operations are CartPoleBatch's."""
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    theta_threshold = 12 * 2 * math.pi / 360
    n_layers = sizes.shape[0] - 1
    width = 0
    for k in range(sizes.shape[0]):
        width = max(width, sizes[k])
    x_in = np.empty(width)  # a layer's input, then (in place) the next layer's
    x_out = np.empty(width)
    obs = np.empty(4)
    episode_sum, episode_sq_sum = np.empty(4), np.empty(4)
    for p in networks:
        w = params[p]
        for e in range(starts.shape[0]):
            x, x_dot, theta, theta_dot = starts[e, 0], starts[e, 1], starts[e, 2], starts[e, 3]
            steps = 0
            episode_sum[:] = 0.0  # per episode, then added up in episode order: numpy's sums
            episode_sq_sum[:] = 0.0
            while True:
                obs[0], obs[1] = np.float32(x), np.float32(x_dot)
                obs[2], obs[3] = np.float32(theta), np.float32(theta_dot)
                for i in range(4):
                    v = obs[i]
                    if obs_stats:
                        episode_sum[i] += v
                        episode_sq_sum[i] += v * v
                    if use_norm:  # ObsNorm: clip((obs - mean) / std) as float32
                        v = min(max((v - norm_mean[i]) / norm_std[i], -clip), clip)
                        v = np.float64(np.float32(v))
                    x_in[i] = v
                offset = 0
                for layer in range(n_layers):
                    n_in, n_out = sizes[layer], sizes[layer + 1]
                    for j in range(n_out):
                        s = 0.0
                        for i in range(n_in):
                            s += x_in[i] * w[offset + i * n_out + j]
                        x_out[j] = s + w[offset + n_in * n_out + j]
                    offset += n_in * n_out + n_out
                    for j in range(n_out):
                        v = x_out[j]
                        if layer < n_layers - 1:
                            if activation == 0:
                                v = max(v, 0.0)
                            elif activation == 1:
                                v = math.tanh(v)
                            elif activation == 2:
                                v = v if v > 0 else math.expm1(v)
                            elif activation == 3:
                                v = v / (1.0 + math.exp(-v))
                        x_in[j] = v
                action = 0  # argmax: the first of the largest outputs
                for j in range(1, sizes[n_layers]):
                    if x_in[j] > x_in[action]:
                        action = j
                force = force_mag if action == 1 else -force_mag
                costheta, sintheta = math.cos(theta), math.sin(theta)
                temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass
                thetaacc = (gravity * sintheta - costheta * temp) / (
                    length * (4.0 / 3.0 - masspole * (costheta * costheta) / total_mass))
                xacc = temp - polemass_length * thetaacc * costheta / total_mass
                x, x_dot = x + tau * x_dot, x_dot + tau * xacc
                theta, theta_dot = theta + tau * theta_dot, theta_dot + tau * thetaacc
                steps += 1
                if abs(x) > 2.4 or abs(theta) > theta_threshold or steps >= max_steps:
                    break
            returns[p, e] = steps  # one reward per step
            lengths[p, e] = steps
            if obs_stats:
                obs_sum[p] += episode_sum
                obs_sq_sum[p] += episode_sq_sum


def evaluate_cartpole(env: CartPoleBatch, spec: MLPSpec, params: np.ndarray, seeds: np.ndarray,
                      norm: ObsNorm | None = None, obs_stats: bool = False,
                      threads: Executor | None = None, jobs: int = 1,
                      stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, ...] | None:
    """Returns, lengths [P, K] and observation sums [P, 4] (zeros unless obs_stats) of every
    network of params [P, D] on the start states of `seeds` [K]; None when `stop()` said so
    (it is asked between shares of the networks). The networks are dealt round-robin into
    4 * jobs shares that run on the `threads` as they free up; each share writes its own rows,
    so the numbers do not depend on the split."""
    kernel = _compile()
    p = len(params)
    returns, lengths = np.zeros((p, len(seeds))), np.zeros((p, len(seeds)), dtype=np.int64)
    obs_sum, obs_sq_sum = np.zeros((p, 4)), np.zeros((p, 4))
    env.reset(seeds)
    mean, std, clip = ((norm.mean, norm.std, norm.clip) if norm is not None
                       else (np.zeros(4), np.ones(4), 10.0))
    args = (np.ascontiguousarray(params, dtype=np.float64), np.array(spec.sizes, dtype=np.int64),
            ACTIVATIONS[spec.activation])
    rest = (np.ascontiguousarray(env.state.T), env.max_episode_steps,
            np.ascontiguousarray(mean, dtype=np.float64),
            np.ascontiguousarray(std, dtype=np.float64), float(clip),
            norm is not None, obs_stats, returns, lengths, obs_sum, obs_sq_sum)
    n_shares = min(4 * jobs, p)
    shares = [np.arange(i, p, n_shares) for i in range(n_shares)]
    stopped = stop if stop is not None else lambda: False
    if threads is None or jobs == 1:
        for share in shares:
            kernel(*args, share, *rest)
            if stopped():
                return None
    else:
        futures = [threads.submit(kernel, *args, share, *rest) for share in shares]
        for future in as_completed(futures):
            future.result()
            if stopped():
                for other in futures:
                    other.cancel()
                wait(futures)  # the shares already running finish before their arrays go
                return None
    return returns, lengths, obs_sum, obs_sq_sum
