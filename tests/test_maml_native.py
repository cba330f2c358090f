"""MAML's C code (gymlab/agents/maml/fast/: sweeps.c, passes.c and kernels.h, through
native.py): the same numbers as autograd and as the torch ops, the build, its cache and the
fallback."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from gymlab.agents.maml import MAML, fast
from gymlab.agents.maml import metalearner as ml
from gymlab.agents.maml.episodes import MetaBatch
from gymlab.agents.maml.fast import analytic, native
from gymlab.agents.maml.policy import GaussianMLPPolicy
from gymlab.agents.maml.trpo import flat, set_flat
from tests.test_maml import fake_episodes

pytestmark = pytest.mark.skipif(native.library() is None,
                                reason="no C compiler or no AVX2/FMA: the torch path runs")


def problem(obs, hidden, nonlinearity, inner_steps, rows, dtype=torch.float64):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(obs, 3, hidden, nonlinearity).to(dtype)
    def episodes(seed):
        return fake_episodes(k=5, b=3, t=rows, obs=obs, act=3, seed=seed, dtype=dtype)

    batch = MetaBatch([episodes(1 + i) for i in range(inner_steps)], episodes(9))
    return policy, batch


def cast(batch: MetaBatch, dtype) -> MetaBatch:
    def one(e):
        return dataclasses.replace(e, **{f.name: getattr(e, f.name).to(dtype)
                                         for f in dataclasses.fields(e)})
    return MetaBatch([one(e) for e in batch.train], one(batch.valid))


def probe(like):
    """The same direction in either dtype."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(like.shape, generator=g, dtype=torch.float64).to(like.dtype)


def objective_values(policy, batch, fast_lr, first_order, workers=1):
    """The objective's value, gradient, one KL Hessian product and line-search values."""
    ours = analytic.GaussianMetaObjective(policy, batch, fast_lr, first_order, 0.0, workers)
    loss, grad = ours.loss_and_gradient()
    v = probe(grad)
    theta = flat(policy.parameters()).detach()
    return (torch.tensor(loss), grad.double(), ours.fisher_product(v).double(),
            torch.tensor(ours.evaluate(theta - 0.05 * v)))


def close(a, b, rtol):
    """Equal to `rtol` of the reference's largest entry."""
    assert (a - b).abs().max() <= rtol * b.abs().max(), ((a - b).abs().max(), b.abs().max())


# rows: steps per task in a meta-batch of 3 episodes; 3 * 70 spans two of the C tiles (192).
CASES = [(2, (64, 64), "tanh", 1, False, 70), (2, (20, 36), "tanh", 2, False, 70),
         (17, (24, 24, 24), "relu", 2, False, 40), (5, (16,), "tanh", 1, False, 70),
         (3, (13, 64), "relu", 1, False, 70), (2, (32, 32), "tanh", 1, True, 70)]


@pytest.mark.parametrize("obs, hidden, nonlinearity, inner_steps, first_order, rows", CASES)
def test_sweeps_equal_autograd_in_float32(obs, hidden, nonlinearity, inner_steps,
                                          first_order, rows):
    """In float32 the fused sweeps give autograd's float64 numbers to float32 rounding and
    the torch ops' float32 numbers closer still: thin and wide observations (the first
    layer's sums or none), widths off the kernel's 8- and 16-column blocks, 1-3 hidden
    layers, tanh and ReLU, 1 or 2 inner steps, first-order or not."""
    policy, batch = problem(obs, hidden, nonlinearity, inner_steps, rows)
    cfg = ml.MAMLConfig(fast_lr=0.5, num_steps=inner_steps, first_order=first_order)
    reference = ml.AutogradMetaObjective(policy, batch, cfg)
    loss, grad = reference.loss_and_gradient()
    v = probe(grad)
    theta = flat(policy.parameters()).detach()
    expected = (torch.tensor(loss), grad, reference.fisher_product(v) - cfg.cg_damping * v,
                torch.tensor(reference.evaluate(theta - 0.05 * v)))
    set_flat(list(policy.parameters()), theta)
    policy32, batch32 = policy.float(), cast(batch, torch.float32)
    assert native.usable(batch32.valid.obs)
    fused = objective_values(policy32, batch32, 0.5, first_order)
    for ours, exact in zip(fused[1:3], expected[1:3]):
        close(ours, exact, 2e-5)
    assert fused[0].item() == pytest.approx(expected[0].item(), abs=1e-6)
    close(fused[3], expected[3].float(), 1e-5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(native, "usable", lambda like: False)
        torch_ops = objective_values(policy32, batch32, 0.5, first_order)
    for ours, theirs in zip(fused[1:3], torch_ops[1:3]):
        close(ours, theirs, 1e-5)


def test_sweeps_give_the_same_numbers_on_one_thread_or_two():
    policy, batch = problem(2, (32, 32), "tanh", 1, 70, torch.float32)
    one, two = (objective_values(policy, batch, 0.5, False, workers) for workers in (1, 2))
    for a, b in zip(one, two):
        assert torch.equal(a, b)


def test_tanh_is_torchs_to_rounding():
    """The sweeps' tanh (kernels.h's own, vectorised) on both sides of its 0.625 switch,
    near 0, at large |z| and on a tail shorter than a vector."""
    z = torch.cat([torch.linspace(-12, 12, 20001), torch.tensor([0.0, 1e-30, -1e-8, 0.625,
                                                                 -0.625, 40.0, -90.0])])
    layers = ["mean.0", "mean.1"]
    params = {"mean.0.weight": torch.ones(1, 1, 1), "mean.0.bias": torch.zeros(1, 1),
              "mean.1.weight": torch.ones(1, 1, 1), "mean.1.bias": torch.zeros(1, 1)}
    (hidden,), (slope,), _ = native.ForwardPass(layers, params, tanh=True)(z.view(1, -1, 1))
    exact = torch.tanh(z.double())
    error = (hidden.view(-1).double() - exact).abs()
    assert error.max() <= 1.5e-7 and (error <= 4e-7 * exact.abs() + 1e-30).all()
    torch.testing.assert_close(slope.view(-1).double(), 1 - exact ** 2, atol=5e-7, rtol=0)


@pytest.mark.parametrize("config, rtol", [
    ({}, 1e-3),  # the family's defaults: 2 x 100 ReLU, inner step 0.5
    ({"hidden_size": 64, "nonlinearity": "tanh", "fast_lr": 0.1, "action_scale": 1.0}, 1e-4)])
def test_training_runs_on_the_sweeps(monkeypatch, tmp_path, config, rtol):
    """A meta-update of the 2D navigation agent goes through the C sweeps (every call counted)
    and lands where the torch ops' update lands, to float32 rounding (as amplified by
    conjugate gradient, more so through the larger inner step and wider ReLU layers of the
    family's defaults than through pytorch-maml-rl's config)."""
    calls = []
    library = native.library()

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(library, name)

    finals = []
    for use in (True, False):
        monkeypatch.setattr(native, "library", (lambda: Counting()) if use else lambda: None)
        with MAML(meta_batch_size=4, fast_batch_size=5, num_batches=1, seed=2,
                  output_folder=str(tmp_path / str(use)), progress=False, **config) as agent:
            agent.learn()
            finals.append(flat(agent.policy.parameters()).detach())
    assert {"forward", "backward", "hessian_product", "jacobian_gram",
            "first_layer_sums"} <= set(calls)
    close(finals[0], finals[1], rtol)


def test_build_is_cached_and_rebuilt_for_a_new_source(tmp_path, monkeypatch):
    monkeypatch.setenv("GYMLAB_CACHE", str(tmp_path))
    built = native.build()
    assert built.parent == tmp_path and built.exists()
    stamp = built.stat().st_mtime_ns
    assert native.build() == built and built.stat().st_mtime_ns == stamp
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in (*native.SOURCES, *native.HEADERS):
        (sources / name).write_text((native.SOURCE_DIR / name).read_text())
    monkeypatch.setattr(native, "SOURCE_DIR", sources)
    assert native.build() == built  # the same text
    (sources / "kernels.h").write_text((sources / "kernels.h").read_text() + "\n/* edited */\n")
    assert native.build() != built


def test_without_a_compiler_the_torch_path_runs_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("GYMLAB_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    native.library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="torch path runs"):
            assert native.library() is None
        assert not native.usable(torch.zeros(1))
        native.library.cache_clear()
        monkeypatch.delenv("CC")
        monkeypatch.setenv("GYMLAB_NATIVE", "0")
        assert native.library() is None
    finally:
        native.library.cache_clear()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("own_parameters", [False, True])
def test_sampler_policy_is_the_modules_to_rounding(own_parameters):
    """The sampler's per-step distribution through the C forward pass equals the
    policy module's, for the shared policy and for each task's own parameters."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, (64, 64), "tanh")
    shared = {n: p.detach() for n, p in policy.named_parameters()}
    params = ({n: p + 0.1 * torch.randn(4, *p.shape) for n, p in shared.items()}
              if own_parameters else None)
    obs = torch.randn(4, 7, 2)
    ours = fast.sampling_policy(policy, params, 4)(obs)
    theirs = policy(obs) if params is None else ml.forward_tasks(policy, params, obs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
        assert a.shape == b.shape


def test_a_tensor_the_c_code_cannot_take_is_refused():
    """A non-float32 or non-contiguous tensor never reaches the C code as a bare pointer."""
    layers = ["mean.0", "mean.1"]
    params = {"mean.0.weight": torch.ones(1, 4, 2), "mean.0.bias": torch.zeros(1, 4),
              "mean.1.weight": torch.ones(1, 1, 4), "mean.1.bias": torch.zeros(1, 1)}
    forward = native.ForwardPass(layers, params, tanh=True)
    for obs in (torch.zeros(1, 3, 2, dtype=torch.float64), torch.zeros(1, 2, 3).mT):
        with pytest.raises(TypeError, match="contiguous float32"):
            native.call("forward", 1, 3, *forward.net.shape(), obs, forward.net.weights,
                        forward.net.weights_t, forward.biases, 1, [None], [None], obs)
