"""MAML-TRPO: 2D navigation, baseline, GAE, TRPO pieces, the meta-gradient, runs and CLI."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import gymlab.envs  # noqa: F401
from gymlab.agents.maml import MAML, MAMLConfig, allocator, fast, trainer
from gymlab.agents.maml import metalearner as ml
from gymlab.agents.maml.episodes import (
    LinearFeatureBaseline,
    TaskEpisodes,
    discount_matrix,
    fit_advantages,
    gae,
)
from gymlab.agents.maml.evaluation import (
    LATER_STEP_EPISODES,
    LATER_STEP_FRACTIONS,
    VALIDATION_SEED_OFFSET,
)
from gymlab.agents.maml.fast import analytic, gaussian_mlp, native
from gymlab.agents.maml.policy import (
    CategoricalMLPPolicy,
    GaussianMLPPolicy,
    make_policy,
    per_task,
)
from gymlab.agents.maml.samplers import VectorEnvBatch, rollout
from gymlab.agents.maml.trpo import conjugate_gradient, flat, line_search, set_flat
from gymlab.core.checkpoints import load_checkpoint, save_checkpoint
from gymlab.core.config import to_dict
from gymlab.envs.navigation_batch import NavigationBatch
from tests.test_cli import assert_one_line_error, run_main

TINY = {"meta_batch_size": 3, "fast_batch_size": 4, "num_batches": 2, "progress": False,
        "later_step_tasks": 0}


# -- 2D navigation -------------------------------------------------------------------------------
def test_navigation_dynamics_reward_and_termination():
    env = gym.make("gymlab/Navigation2D-v0")
    env.unwrapped.reset_task({"goal": [0.15, -0.05]})
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [0.0, 0.0]
    obs, reward, terminated, truncated, _ = env.step(np.array([0.5, -0.05]))  # x clipped
    assert np.allclose(obs, [0.1, -0.05]) and obs.dtype == np.float32
    assert reward == pytest.approx(-0.05, abs=1e-6) and not terminated
    obs, reward, terminated, _, _ = env.step(np.array([0.05, 0.0]))
    assert terminated and reward == pytest.approx(0.0, abs=1e-6)
    env.reset()
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        *_, terminated, truncated, _ = env.step(np.zeros(2))
        steps += 1
    assert truncated and not terminated and steps == 100
    with pytest.raises(ValueError, match="goal"):
        env.unwrapped.reset_task({"goal": [1.0]})


def test_navigation_tasks_are_seeded():
    env = gym.make("gymlab/Navigation2D-v0").unwrapped
    a = env.sample_tasks(5, np.random.default_rng(3))
    b = env.sample_tasks(5, np.random.default_rng(3))
    assert a == b and a != env.sample_tasks(5, np.random.default_rng(4))
    goals = np.array([t["goal"] for t in env.sample_tasks(1000, np.random.default_rng(0))])
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and abs(goals.mean()) < 0.03


def test_batched_navigation_is_the_gymnasium_env_bit_for_bit():
    rng = np.random.default_rng(0)
    tasks = [{"goal": [0.15, -0.05]}] + sample(rng, 2)
    batch = NavigationBatch()
    envs = [[gym.make("gymlab/Navigation2D-v0") for _ in range(4)] for _ in tasks]
    obs = batch.reset(tasks, 4)
    for row, task in zip(envs, tasks):
        for env in row:
            env.unwrapped.reset_task(task)
            env.reset()
    done_seen = np.zeros((3, 4), bool)
    for t in range(100):
        actions = torch.from_numpy(rng.normal(0, 0.12, size=(3, 4, 2)).astype(np.float32))
        if t == 0:
            actions[0, 0] = torch.tensor([0.1, -0.05])
        if t == 1:
            actions[0, 0] = torch.tensor([0.05, 0.0])
        obs, rewards, done = batch.step(actions)
        for k, row in enumerate(envs):
            for b, env in enumerate(row):
                if done_seen[k, b]:
                    continue
                o, r, term, trunc, _ = env.step(actions[k, b].numpy())
                assert np.array_equal(o, obs[k, b].numpy())
                assert np.float32(r) == rewards[k, b].item()
                assert (term or trunc) == bool(done[k, b])
                done_seen[k, b] = term or trunc
    assert done_seen.all() and t == 99


def sample(rng, n):
    return gym.make("gymlab/Navigation2D-v0").unwrapped.sample_tasks(n, rng)


def test_vector_env_sampler_equals_the_tensor_program():
    """The gymnasium path (SyncVectorEnv, one worker process besides this one) collects the
    very episodes the batched navigation does, from the same generator."""
    tasks = sample(np.random.default_rng(1), 3)
    torch.manual_seed(0)
    policy = make_policy(gym.spaces.Box(-np.inf, np.inf, (2,)), gym.spaces.Box(-0.1, 0.1, (2,)),
                         "auto", (8,), "tanh")
    ours = rollout(NavigationBatch(), policy, None, tasks, 4, torch.Generator().manual_seed(5))
    vec = VectorEnvBatch("gymlab/Navigation2D-v0", {}, 3, 4, num_workers=2)
    try:
        theirs = rollout(vec, policy, None, tasks, 4, torch.Generator().manual_seed(5))
    finally:
        vec.close()
    for name in ("obs", "actions", "rewards", "mask"):
        assert torch.equal(getattr(ours, name), getattr(theirs, name)), name
    scaled = rollout(NavigationBatch(), policy, None, tasks, 4, torch.Generator().manual_seed(5),
                     action_scale=4.0)  # the env moves by the action / 4, clipped
    torch.testing.assert_close(scaled.obs[:, :, 1], (ours.actions[:, :, 0] / 4).clamp(-0.1, 0.1))


# -- baseline and advantages ------------------------------------------------------------------
def fake_episodes(k=3, b=4, t=6, obs=2, act=2, seed=0, dtype=torch.float64) -> TaskEpisodes:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(k, b, t, dtype=dtype)
    mask[0, 1, 3:] = 0  # episodes that ended early
    mask[2, 0, 1:] = 0
    ep = TaskEpisodes(obs=torch.randn(k, b, t, obs, generator=g, dtype=dtype) * mask[..., None],
                  actions=torch.randn(k, b, t, act, generator=g, dtype=dtype),
                  rewards=torch.randn(k, b, t, generator=g, dtype=dtype) * mask, mask=mask)
    ep.advantages = torch.randn(k, b, t, generator=g, dtype=dtype) * mask
    return ep


def test_baseline_fit_is_the_ridge_solution():
    ep = fake_episodes(b=10, t=20)
    returns = torch.randn(3, 10, 20, dtype=torch.float64) * ep.mask
    baseline = LinearFeatureBaseline(reg_coeff=1e-5)
    values = baseline.fit_predict(ep, returns)
    for k in range(3):
        x = LinearFeatureBaseline.features(ep)[k].reshape(-1, 8).numpy()
        y = returns[k].reshape(-1).numpy()
        w = np.linalg.solve(x.T @ x + 1e-5 * np.eye(8), x.T @ y)
        np.testing.assert_allclose(values[k].reshape(-1).numpy(), x @ w, rtol=1e-9, atol=1e-9)
    # returns that are a linear function of the features are fitted exactly (tiny ridge)
    exact = LinearFeatureBaseline.features(ep) @ torch.arange(1.0, 9.0, dtype=torch.float64)
    fitted = LinearFeatureBaseline(reg_coeff=1e-12).fit_predict(ep, exact)
    np.testing.assert_allclose(fitted, exact, atol=1e-6)


def test_baseline_raises_the_regularisation_when_the_fit_fails():
    baseline = LinearFeatureBaseline(reg_coeff=1e-5)
    xtx = torch.stack([torch.eye(3), -5e-5 * torch.eye(3)]).double()  # task 1: not PD
    coeffs = baseline.ridge_solve(xtx, torch.ones(2, 3, dtype=torch.float64))
    assert baseline.last_reg.tolist() == pytest.approx([1e-5, 1e-4])
    assert torch.isfinite(coeffs).all()
    with pytest.raises(ArithmeticError, match="regularisation"):
        LinearFeatureBaseline(max_tries=2).ridge_solve(-torch.eye(3)[None].double(),
                                                        torch.ones(1, 3, dtype=torch.float64))


def test_gae_matches_the_recursion():
    ep = fake_episodes()
    values = torch.randn(3, 4, 6, dtype=torch.float64)
    gamma, tau = 0.9, 0.8
    ours = gae(ep.rewards, values, ep.mask, gamma, tau)
    v = values * ep.mask
    expected = torch.zeros_like(v)
    running = torch.zeros(3, 4, dtype=torch.float64)
    for t in reversed(range(6)):
        nxt = v[..., t + 1] if t + 1 < 6 else torch.zeros(3, 4, dtype=torch.float64)
        delta = (ep.rewards[..., t] + gamma * nxt - v[..., t]) * ep.mask[..., t]
        running = delta + gamma * tau * running
        expected[..., t] = running
    torch.testing.assert_close(ours, expected)
    assert discount_matrix(3, 0.5, torch.device("cpu")).tolist() == [
        [1, 0, 0], [0.5, 1, 0], [0.25, 0.5, 1]]
    fit_advantages(ep, LinearFeatureBaseline(), 0.99, 1.0)
    adv, mask = ep.advantages.double(), ep.mask
    for k in range(3):  # normalised per task over the steps that happened
        picked = adv[k][mask[k] > 0]
        assert picked.mean().abs() < 1e-6 and (picked.std(unbiased=False) - 1).abs() < 1e-4
    assert (ep.advantages[mask == 0] == 0).all()


# -- TRPO pieces and the meta-gradient ----------------------------------------------------------
def test_conjugate_gradient_solves_a_known_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(10, 10, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(10, dtype=torch.float64)
    b = torch.randn(10, generator=g, dtype=torch.float64)
    x, ax = conjugate_gradient(lambda v: a @ v, b, iters=10)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-6, atol=1e-6)
    x, ax = conjugate_gradient(lambda v: a @ v, b, iters=4)  # not converged: A x from r
    torch.testing.assert_close(ax, a @ x, rtol=1e-9, atol=1e-9)
    assert (ax - b).norm() > 1e-3


def test_line_search_keeps_theta_when_nothing_passes():
    theta, step = torch.ones(3), torch.full((3,), 0.5)
    tried = []

    def worse(candidate):
        tried.append(candidate.clone())
        return 1.0, 0.0  # never below the old loss

    new, steps, loss, kl = line_search(worse, theta, step, 0.5, 0.01, 15, 0.8)
    assert new is theta and steps == 0 and loss == 0.5 and len(tried) == 15
    torch.testing.assert_close(tried[2], theta - 0.64 * step)
    new, steps, *_ = line_search(lambda c: (0.0, 1.0), theta, step, 0.5, 0.01, 15, 0.8)
    assert new is theta and steps == 0  # improves, but outside the trust region
    losses = iter([(1.0, 0.0), (0.4, 0.02), (0.4, 0.005)])
    new, steps, loss, kl = line_search(lambda c: next(losses), theta, step, 0.5, 0.01, 15, 0.8)
    assert steps == 3 and (loss, kl) == (0.4, 0.005)
    torch.testing.assert_close(new, theta - 0.64 * step)


def small_problem(steps=1, first_order=False, seed=0, discrete=False):
    torch.manual_seed(seed)
    policy = (CategoricalMLPPolicy(2, 3, (5,), "tanh") if discrete
              else GaussianMLPPolicy(2, 2, (5,), "tanh")).double()

    def episodes(s):
        ep = fake_episodes(seed=s)
        if discrete:
            ep.actions = torch.randint(0, 3, ep.mask.shape, generator=torch.Generator()
                                       .manual_seed(s))
        return ep

    train = [episodes(seed + 1 + i) for i in range(steps)]
    batch = ml.MetaBatch(train, episodes(seed + 10))
    cfg = MAMLConfig(fast_lr=0.5, num_steps=steps, first_order=first_order)
    return policy, batch, cfg


@pytest.mark.parametrize("steps, discrete", [(1, False), (2, False), (1, True)])
def test_kl_hessian_product_is_the_exact_hessian(steps, discrete):
    policy, batch, cfg = small_problem(steps, discrete=discrete)
    params = dict(policy.named_parameters())
    leaves = list(params.values())
    _, kl, old, adapted, inner = ml.surrogate(policy, params, batch, cfg, None, True)
    ours = ml.kl_hessian_product(policy, leaves, adapted, inner, batch.valid, old, cfg.fast_lr,
                                 0.0)
    v = torch.randn(sum(p.numel() for p in leaves), dtype=torch.float64)
    kl_grad = flat(torch.autograd.grad(kl, leaves, create_graph=True))
    full = flat(torch.autograd.grad(kl_grad @ v, leaves, retain_graph=True))  # all terms
    torch.testing.assert_close(ours(v), full, rtol=1e-9, atol=1e-11)
    assert ours(v).abs().max() > 1e-3  # not trivially zero

    def kl_grad(theta_shift):  # central finite differences of the KL's gradient
        shifted = {n: p.detach() + d.view_as(p) for (n, p), d in zip(
            params.items(), torch.split(theta_shift, [p.numel() for p in leaves]))}
        shifted = {n: p.requires_grad_() for n, p in shifted.items()}
        _, k, *_ = ml.surrogate(policy, shifted, batch, cfg, old, True)
        return flat(torch.autograd.grad(k, list(shifted.values())))

    eps = 1e-5
    fd = (kl_grad(eps * v) - kl_grad(-eps * v)) / (2 * eps)
    torch.testing.assert_close(ours(v), fd, rtol=1e-5, atol=1e-7)


def meta_gradient(policy, batch, cfg):
    params = dict(policy.named_parameters())
    loss, *_ = ml.surrogate(policy, params, batch, cfg, None, True)
    return flat(torch.autograd.grad(loss, list(params.values())))


def test_meta_gradient_matches_finite_differences():
    policy, batch, cfg = small_problem()
    grad = meta_gradient(policy, batch, cfg)
    theta = flat(policy.parameters()).detach()
    v = torch.randn_like(theta)
    params = dict(policy.named_parameters())
    _, _, old, *_ = ml.surrogate(policy, params, batch, cfg, None, True)

    def loss_at(t):
        set_flat(list(params.values()), t)
        return ml.surrogate(policy, params, batch, cfg, old, False)[0].item()

    eps = 1e-6
    fd = (loss_at(theta + eps * v) - loss_at(theta - eps * v)) / (2 * eps)
    assert grad @ v == pytest.approx(fd, rel=1e-5)


def test_first_order_really_drops_the_second_order_terms():
    policy, batch, cfg = small_problem(first_order=True)
    fomaml = meta_gradient(policy, batch, cfg)
    # first-order MAML's gradient: each task's gradient at its adapted parameters, averaged
    params = dict(policy.named_parameters())
    adapted, _ = ml.adapt(policy, per_task(params, 3), batch.train, cfg.fast_lr,
                          create_graph=False)
    phi = {n: p.detach().requires_grad_() for n, p in adapted.items()}
    dist = ml.forward_tasks(policy, phi, batch.valid.obs)
    loss = -ml.weighted_mean(batch.valid.advantages * torch.exp(
        policy.log_prob(dist, batch.valid.actions)
        - policy.log_prob(tuple(d.detach() for d in dist), batch.valid.actions)),
        batch.valid.mask).mean()
    expected = flat(g.sum(0) for g in torch.autograd.grad(loss, list(phi.values())))
    torch.testing.assert_close(fomaml, expected)
    second = meta_gradient(policy, batch, dataclasses.replace(cfg, first_order=False))
    assert (second - fomaml).abs().max() > 1e-3 * fomaml.abs().max()


def float64_batch(batch):
    """The batch in float64, with every third episode ended early (as at a goal)."""
    def cast(e):
        mask = e.mask.double()
        mask[:, ::3, 40:] = 0
        return dataclasses.replace(e, obs=e.obs.double(), actions=e.actions.double(),
                                   rewards=e.rewards.double() * mask, mask=mask,
                                   advantages=e.advantages.double() * mask)
    return ml.MetaBatch([cast(e) for e in batch.train], cast(batch.valid))


@pytest.mark.parametrize("nonlinearity, layers, steps, first_order", [
    ("tanh", 2, 1, False), ("tanh", 2, 2, False), ("relu", 3, 2, False), ("tanh", 1, 1, True)])
def test_hand_derived_objective_equals_autograd(monkeypatch, nonlinearity, layers, steps,
                                                first_order):
    """analytic.py's value, meta-gradient, KL Hessian products and line-search values are
    autograd's (float64, on sampled 2D-navigation episodes with early ends), for one chunk
    of tasks or several, on one thread or two, with the first layer's terms precomputed
    (2-d observations) or not."""
    agent = MAML(meta_batch_size=5, fast_batch_size=4, num_steps=steps, hidden_size=16,
                 num_layers=layers, nonlinearity=nonlinearity, first_order=first_order,
                 seed=3, output_folder=None, progress=False, fast_lr=0.5)
    tasks = agent.family.unwrapped.sample_tasks(5, agent.task_rng)
    batch = float64_batch(agent.sample_meta_batch(tasks))
    policy, cfg = agent.policy.double(), agent.config
    reference = ml.AutogradMetaObjective(policy, batch, cfg)
    loss, grad = reference.loss_and_gradient()
    v = torch.randn(grad.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fisher = reference.fisher_product(v)
    theta = flat(policy.parameters()).detach()
    values = reference.evaluate(theta - 0.05 * v)
    set_flat(list(policy.parameters()), theta)
    for chunk_elements, workers, thin_input in [(10**9, 1, 8), (1, 1, 8), (1, 2, 8),
                                                (10**9, 1, 0)]:  # 1: a chunk per task
        monkeypatch.setattr(analytic, "CHUNK_ELEMENTS", chunk_elements)
        monkeypatch.setattr(gaussian_mlp, "THIN_INPUT", thin_input)
        ours = analytic.GaussianMetaObjective(policy, batch, cfg.fast_lr, first_order,
                                              cfg.cg_damping, workers)
        assert len(ours.chunks) == (1 if chunk_elements > 1 else 5)
        assert (ours.chunks[0].steps[0].first_layer is None) == (thin_input == 0)
        our_loss, our_grad = ours.loss_and_gradient()
        assert our_loss == pytest.approx(loss, abs=1e-12)
        torch.testing.assert_close(our_grad, grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.fisher_product(v), fisher, rtol=1e-10, atol=1e-12)
        assert ours.evaluate(theta - 0.05 * v) == pytest.approx(values, rel=1e-10, abs=1e-14)
    assert flat(policy.parameters()).equal(theta)  # the hand-derived path leaves theta alone


def test_sampling_adapts_by_hand_as_autograd_does(monkeypatch):
    agent = MAML(meta_batch_size=3, fast_batch_size=4, hidden_size=8, seed=1,
                 output_folder=None, progress=False)
    episodes = float64_batch(agent.sample_meta_batch(
        agent.family.unwrapped.sample_tasks(3, agent.task_rng))).valid
    agent.policy.double()
    params = per_task(dict(agent.policy.named_parameters()), 3)
    expected, _ = ml.adapt(agent.policy, params, [episodes], 0.1, create_graph=False)
    monkeypatch.setattr(analytic, "CHUNK_ELEMENTS", 1)  # one task per chunk
    ours = analytic.adapted_parameters(agent.policy, params, episodes, 0.1)
    for name, value in expected.items():
        torch.testing.assert_close(ours[name], value, rtol=1e-10, atol=1e-12)


def test_trpo_step_is_the_same_through_either_objective():
    """A whole meta-update (CG, step length, line search) by the hand-derived objective and
    by autograd's, passed as trpo_step's objective, in float64."""
    policy, batch, cfg = small_problem(steps=2)
    twin = copy.deepcopy(policy)
    ours = ml.trpo_step(policy, fast.meta_objective(policy, batch, cfg), cfg)
    theirs = ml.trpo_step(twin, ml.AutogradMetaObjective(twin, batch, cfg), cfg)
    assert ours.line_search_steps == theirs.line_search_steps > 0
    assert ours.loss_after == pytest.approx(theirs.loss_after, rel=1e-8)
    torch.testing.assert_close(flat(policy.parameters()), flat(twin.parameters()),
                               rtol=1e-9, atol=1e-11)


def test_the_seam_picks_c_then_hand_derived_torch_then_autograd(monkeypatch):
    """fast.path: C for float32 Gaussian MLPs where the library builds, the hand-derived
    torch ops for other Gaussian MLPs, autograd's reference for other policies; the
    meta-objective follows it, and GYMLAB_NATIVE=0 switches C off."""
    policy, batch, cfg = small_problem()  # float64
    assert fast.path(policy) == "torch"
    assert isinstance(fast.meta_objective(policy, batch, cfg), analytic.GaussianMetaObjective)
    assert fast.path(policy.float()) == ("c" if native.library() is not None else "torch")
    discrete, batch, cfg = small_problem(discrete=True)
    assert fast.path(discrete) == "autograd"
    assert isinstance(fast.meta_objective(discrete, batch, cfg), ml.AutogradMetaObjective)
    monkeypatch.setenv("GYMLAB_NATIVE", "0")
    native.library.cache_clear()
    try:
        assert fast.path(policy.float()) == "torch"
    finally:
        native.library.cache_clear()


def test_maml_keeps_freed_memory_for_reuse(monkeypatch):
    """A MAML agent sets the allocator's thresholds (benchmarks/maml.py --parts training
    measures what they save); glibc takes them."""
    calls = []
    monkeypatch.setattr(trainer, "reuse_freed_memory", lambda: calls.append(True))
    MAML(meta_batch_size=2, fast_batch_size=2, output_folder=None, progress=False)
    assert calls == [True]
    assert allocator.reuse_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_episodes_select_takes_every_field_of_some_tasks():
    episodes = TaskEpisodes(torch.randn(4, 2, 3, 2), torch.randn(4, 2, 3, 2), torch.randn(4, 2, 3),
                        torch.ones(4, 2, 3))
    part = episodes.select(slice(1, 3))
    assert part.advantages is None
    assert part.obs.equal(episodes.obs[1:3]) and part.mask.shape == (2, 2, 3)
    fit = dataclasses.replace(episodes, advantages=torch.randn(4, 2, 3)).select(slice(3, 4))
    assert fit.advantages.shape == (1, 2, 3) and fit.rewards.equal(episodes.rewards[3:])


def test_policies_fit_their_spaces():
    box, disc = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(4)
    policy = make_policy(box, disc, "auto", (8, 8), "relu")
    assert isinstance(policy, CategoricalMLPPolicy)
    obs = torch.randn(2, 5, 3)
    dist = policy(obs)
    actions = policy.sample(dist, torch.Generator().manual_seed(0))
    assert actions.shape == (2, 5) and actions.max() < 4
    all_actions = torch.arange(4).view(4, 1, 1).expand(4, 2, 5)
    probs = torch.stack([policy.log_prob(dist, a).exp() for a in all_actions])
    torch.testing.assert_close(probs.sum(0), torch.ones(2, 5))
    assert isinstance(make_policy(box, box, "auto", (8,), "tanh"), GaussianMLPPolicy)
    with pytest.raises(TypeError, match="gaussian policy needs a 1-d Box"):
        make_policy(box, disc, "gaussian", (8,), "tanh")
    with pytest.raises(TypeError, match="1-d Box observation"):
        make_policy(gym.spaces.Discrete(3), box, "auto", (8,), "tanh")


def test_per_task_parameters_give_each_task_its_own_gradient():
    policy, batch, cfg = small_problem()
    params = dict(policy.named_parameters())
    both = ml.inner_loss(policy, per_task(params, 3), batch.train[0])
    per_task_grads = torch.autograd.grad(both.sum(), list(params.values()))
    single = []
    for k in range(3):
        ep = TaskEpisodes(*(getattr(batch.train[0], f)[k:k + 1] for f in
                        ("obs", "actions", "rewards", "mask", "advantages")))
        loss = ml.inner_loss(policy, per_task(params, 1), ep).sum()
        single.append(flat(torch.autograd.grad(loss, list(params.values()))))
    torch.testing.assert_close(flat(per_task_grads), sum(single))


# -- runs -----------------------------------------------------------------------------------------
def final_state(agent):
    return flat(p.detach() for p in agent.policy.parameters())


def records(run_dir):
    """progress.jsonl, one record per meta-batch (its scalars and its score, merged), without
    the timings."""
    merged: dict[int, dict] = {}
    for line in (run_dir / "progress.jsonl").read_text().splitlines():
        record = json.loads(line)
        merged.setdefault(record["step"], {}).update(
            {k: v for k, v in record.items() if not k.startswith("time/")})
    return list(merged.values())


def test_same_seed_same_numbers(tmp_path):
    runs = []
    for name in ("a", "b"):
        with MAML(**TINY, output_folder=str(tmp_path / name), seed=3) as agent:
            agent.learn()
            runs.append((final_state(agent), records(tmp_path / name)))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    with MAML(**TINY, output_folder=str(tmp_path / "c"), seed=4) as other:
        other.learn()
        assert not torch.equal(final_state(other), runs[0][0])


def test_resume_equals_uninterrupted(tmp_path):
    config = {**TINY, "num_batches": 3, "seed": 1}
    with MAML(**config, output_folder=str(tmp_path / "whole")) as whole:
        whole.learn()
    with MAML(**{**config, "num_batches": 1}, output_folder=str(tmp_path / "split")) as first:
        first.learn()
    with MAML.resume(tmp_path / "split", num_batches=3) as rest:
        assert rest.step == 1
        rest.learn()
        assert rest.outcome == "completed" and rest.exit_code == 0
        assert torch.equal(final_state(rest), final_state(whole))
    assert records(tmp_path / "split") == records(tmp_path / "whole")
    with pytest.raises(ValueError, match="cannot change fast_lr"):
        MAML.resume(tmp_path / "split", fast_lr=0.5)


def test_sigterm_saves_exits_143_and_resumes_exactly(tmp_path):
    """SIGTERM during a run (here: sent from the score callback after the first batch)
    ends it after that batch with last.pt saved and exit code 143; resuming it gives the
    numbers of an uninterrupted run, best.pt included."""
    config = {**TINY, "num_batches": 2, "seed": 2, "logdir": str(tmp_path)}
    with MAML(**config) as whole:
        whole.learn()
    with MAML(**config) as cut:
        cut.learn(on_eval=lambda step, result: os.kill(os.getpid(), signal.SIGTERM))
        assert (cut.outcome, cut.exit_code, cut.step) == ("interrupted", 143, 1)
    assert cut.run.checkpoint("last").exists()
    with MAML.resume(cut.run.path) as rest:
        rest.learn()
        assert rest.exit_code == 0 and rest.step == 2
        assert torch.equal(final_state(rest), final_state(whole))
    assert records(cut.run.path) == records(whole.run.path)
    best = [MAML.load(run.path / "checkpoints" / "best.pt") for run in (whole.run, cut.run)]
    assert torch.equal(final_state(best[0]), final_state(best[1]))


def test_maml_is_an_algorithm_with_its_tuned_table(tmp_path):
    """The registry finds MAML; its tuned table answers either spelling of a family; a run's
    config.json has the shared layout; progress counts meta-batches up to num_batches."""
    from gymlab.core.algorithm import tuned_defaults
    from gymlab.registry import algorithm

    assert algorithm("maml") is MAML and MAML.unit == "meta-batch"
    for env in ("HalfCheetahDir-v0", "gymlab/HalfCheetahDir-v0"):
        assert tuned_defaults(MAML, env) == {"meta_batch_size": 40, "action_scale": 10.0}
    assert tuned_defaults(MAML, "gymlab/Navigation2D-v0")["fast_lr"] == 0.5  # the authors' run
    with MAML(**TINY, logdir=str(tmp_path)) as agent:
        assert agent.run_config.env == "Navigation2D-v0" and agent.progress_total() == 2
        agent.learn()
    config = json.loads((agent.run.path / "config.json").read_text())
    assert config["run"]["seed"] == 0 and config["maml"]["fast_batch_size"] == 4
    assert config["unit"] == "meta-batch" and "env" not in config["maml"]
    assert [r["eval/return_mean"] for r in records(agent.run.path)] == pytest.approx(
        [r["total_rewards/after_update"] for r in records(agent.run.path)], rel=1e-5)
    lines = agent.eval_lines("best.pt", episodes=2, seed=0)
    assert "40 new tasks" in lines[0] and lines[-1].startswith("after 3 step(s)")
    score = agent.evaluate(episodes=2, seed=0)
    assert score.returns.shape == (40,) and np.isfinite(score.mean)


def test_a_run_written_before_the_shared_lifecycle_loads_and_resumes(tmp_path):
    """An older run directory (config.json and checkpoints with env, seed and progress in
    the maml section, no "run" section, no session state, no later_step_fraction or
    later_step_tasks) still evaluates, with the halving test steps it was made with, and
    resumes."""
    with MAML(**{**TINY, "num_batches": 1}, output_folder=str(tmp_path / "new")) as agent:
        agent.learn()
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    section = {**to_dict(agent.config), "env": "Navigation2D-v0", "env_kwargs": {},
               "seed": 0, "progress": False}
    del section["later_step_fraction"], section["later_step_tasks"]
    (old / "config.json").write_text(json.dumps({"algo": "maml", "maml": section}))
    for name in ("best", "last"):
        data = load_checkpoint(tmp_path / "new" / "checkpoints" / f"{name}.pt")
        data["config"] = {"maml": section}
        if "state" in data:
            del data["state"]["session"]
        save_checkpoint(old / "checkpoints" / f"{name}.pt", "maml", data)
    with MAML.load(old) as loaded:
        assert loaded.step == 1 and loaded.run_config.seed == 0
        assert torch.equal(final_state(loaded), final_state(agent))
        lr = loaded.config.fast_lr
        assert loaded.default_test_lr(3) == pytest.approx([lr, lr / 2, lr / 4])
    with MAML.resume(old, num_batches=2) as resumed:
        resumed.learn()
        assert resumed.step == 2 and resumed.exit_code == 0


def test_adaptation_curve_test_step_size():
    """fast_lr=None is the config's step for the trained steps, then later_step_fraction of
    it (2D navigation's 0.3; MAMLConfig's 0.5), then half the previous one; another step
    size changes the adapted returns only (the same goals and episodes with theta); one per
    step applies each to its own step; a non-positive one is refused."""
    with MAML(**TINY, fast_lr=0.3) as agent:
        assert agent.default_test_lr(3) == pytest.approx([0.3, 0.09, 0.045])
        default = agent.adaptation_curve(tasks=3, grad_steps=2, episodes=4).returns
        same = agent.adaptation_curve(tasks=3, grad_steps=2, episodes=4,
                                      fast_lr=agent.default_test_lr(2)).returns
        constant = agent.adaptation_curve(tasks=3, grad_steps=2, episodes=4, fast_lr=0.3).returns
        other = agent.adaptation_curve(tasks=3, grad_steps=2, episodes=4, fast_lr=0.05).returns
        np.testing.assert_array_equal(default, same)
        np.testing.assert_array_equal(default[0], other[0])
        assert not np.allclose(default[1:], other[1:])
        np.testing.assert_array_equal(constant[:2], default[:2])  # the first step is 0.3
        assert not np.allclose(constant[2], default[2])
    with MAML(**TINY, fast_lr=0.3, later_step_fraction=0.5) as agent:
        assert agent.default_test_lr(3) == pytest.approx([0.3, 0.15, 0.075])
    with pytest.raises(ValueError, match="later_step_fraction must be positive"):
        MAMLConfig(later_step_fraction=0.0)
    with MAML(**TINY, fast_lr=0.3, num_steps=2) as agent:
        assert agent.default_test_lr(4) == pytest.approx([0.3, 0.3, 0.09, 0.045])
        for bad in (0.0, (), (0.3, -1.0)):
            with pytest.raises(ValueError, match="fast_lr must be positive"):
                agent.adaptation_curve(tasks=3, grad_steps=1, episodes=4, fast_lr=bad)


# -- CLI ----------------------------------------------------------------------------------------
TINY_FLAGS = ["--meta-batch-size", "3", "--fast-batch-size", "4", "--num-batches", "2",
              "--progress", "false", "--later-step-tasks", "2"]


def test_later_step_is_chosen_on_validation_tasks(monkeypatch):
    """later_step_tasks: the step after the trained ones is the fraction of fast_lr with the
    best mean return on validation tasks, each candidate's return exactly the adaptation
    curve's on those tasks (the same episodes before its step, the same random numbers
    after); chosen once per policy, only when such a step is asked for, without changing
    what training draws next (meta eval --later-step-tasks overrides it: the CLI test)."""
    calls = []
    choose = trainer.choose_later_step_fraction
    monkeypatch.setattr(trainer, "choose_later_step_fraction",
                        lambda agent, tasks: calls.append(tasks) or choose(agent, tasks))
    with MAML(**{**TINY, "later_step_tasks": 3}, fast_lr=0.3) as agent:
        assert agent.default_test_lr(1) == [0.3] and calls == []
        state = (agent.task_rng.bit_generator.state, agent.generator.get_state())
        fraction, means = choose(agent, 3)
        assert set(means) == set(LATER_STEP_FRACTIONS)
        assert fraction == max(means, key=means.__getitem__)
        assert agent.default_test_lr(3) == pytest.approx([0.3, 0.3 * fraction, 0.15 * fraction])
        assert agent.default_test_lr(2) == agent.default_test_lr(3)[:2] and calls == [3]
        assert agent.task_rng.bit_generator.state == state[0]
        assert torch.equal(agent.generator.get_state(), state[1])
        seed = agent.run_config.seed + VALIDATION_SEED_OFFSET
        for candidate in (0.1, 1.0):
            curve = agent.adaptation_curve(tasks=3, grad_steps=2, episodes=LATER_STEP_EPISODES,
                                           seed=seed, fast_lr=(0.3, 0.3 * candidate))
            assert curve.mean[2] == pytest.approx(means[candidate], rel=1e-6)
        assert choose(agent, 3) == (fraction, means)
        agent.train_batch()
        agent.default_test_lr(3)
        assert calls == [3, 3]  # a new policy, a new choice
    with pytest.raises(ValueError, match="later_step_tasks must be >= 0"):
        MAMLConfig(later_step_tasks=-1)


@pytest.mark.smoke
def test_cli_train_maml_resume_and_eval(tmp_path, capsys):
    """MAML through the commands every algorithm has: train, train --resume, eval (which
    prints the adaptation curve)."""
    code, _, err = run_main(capsys, "train", "maml", "--env", "Navigation2D-v0", *TINY_FLAGS,
                            "--logdir", str(tmp_path), "--first-order")
    assert code == 0, err
    (run,) = tmp_path.glob("maml-Navigation2D-v0-*")
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "maml" and config["maml"]["first_order"] is True
    assert config["maml"]["fast_batch_size"] == 4 and config["run"]["env"] == "Navigation2D-v0"
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    logged = records(run)
    assert [r["step"] for r in logged] == [1, 2]
    assert {"total_rewards/before_update", "total_rewards/after_update",
            "eval/return_mean"} <= set(logged[0])
    code, _, err = run_main(capsys, "train", "maml", "--resume", str(run), "--num-batches", "3")
    assert code == 0, err
    assert [r["step"] for r in records(run)] == [1, 2, 3]
    code, text, err = run_main(capsys, "eval", str(run), "--episodes", "2")
    assert code == 0, err
    assert "new tasks" in text and "after 3 step(s)" in text
    assert "chosen on 2 validation tasks" in text
    code, _, err = run_main(capsys, "plot", str(run), "--out", str(tmp_path / "curve.png"))
    assert code == 0, err
    assert (tmp_path / "curve.png").stat().st_size > 1000


@pytest.mark.smoke
def test_cli_meta_maml_output_folder_and_meta_eval(tmp_path, capsys, monkeypatch):
    """pytorch-maml-rl's spelling: meta maml --output-folder (the run directory itself,
    -$SLURM_JOB_ID appended), meta eval's plotted adaptation curve and its step sizes: given,
    chosen on validation tasks, or the run's fixed fraction."""
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    code, _, err = run_main(capsys, "meta", "maml", "--env", "Navigation2D-v0", *TINY_FLAGS,
                            "--output-folder", str(tmp_path / "nav"), "--first-order")
    assert code == 0, err
    run = tmp_path / "nav-777"
    assert json.loads((run / "config.json").read_text())["maml"]["first_order"] is True
    assert [r["step"] for r in records(run)] == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["nav-777"]
    code, text, err = run_main(capsys, "meta", "eval", str(run), "--tasks", "4",
                               "--grad-steps", "2", "--episodes", "3")
    assert code == 0, err
    assert "after 2 step(s)" in text and (run / "adaptation.png").stat().st_size > 1000
    curve = json.loads((run / "adaptation.json").read_text())
    assert len(curve["mean"]) == 3 and len(curve["stderr"]) == 3
    code, text, err = run_main(capsys, "meta", "eval", str(run), "--tasks", "4",
                               "--grad-steps", "2", "--episodes", "3", "--fast-lr", "0.5,0.03")
    assert code == 0, err  # no second step the validation tasks can choose is 0.03
    constant = json.loads((run / "adaptation.json").read_text())
    assert constant["mean"][:2] == curve["mean"][:2] and constant["mean"][2] != curve["mean"][2]
    assert constant["step_sizes"] == [0.5, 0.03] and "step sizes 0.5, 0.03:" in text
    code, text, err = run_main(capsys, "meta", "eval", str(run), "--tasks", "4",
                               "--grad-steps", "2", "--episodes", "3", "--later-step-tasks", "0")
    assert code == 0, err  # the run's later_step_fraction: 2D navigation's 0.3
    assert "step sizes 0.5, 0.15:" in text
    code, _, err = run_main(capsys, "meta", "eval", str(run), "--later-step-tasks", "-1")
    assert code == 2 and "--later-step-tasks must be >= 0" in err
    assert_one_line_error(err)


@pytest.mark.smoke
@pytest.mark.parametrize("flags, message", [
    (["--env", "Nowhere-v0"], "unknown task family"),
    (["--env", "CartPole-v1"], "not a task family"),
    (["--policy", "categorical"], "categorical policy needs a Discrete"),
    (["--fast-batch-size", "0"], "fast_batch_size must be positive"),
    (["--meta-batch-size", "-2"], "meta_batch_size must be positive"),
    (["--max-kl", "0"], "max_kl must be positive"),
    (["--max-kl", "-0.1"], "max_kl must be positive"),
    (["--num-steps", "0"], "num_steps must be positive"),
    (["--device", "nowhere"], "is not usable here"),
    (["--fast-batch-size", "two"], "expected int"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, flags, message):
    code, _, err = run_main(capsys, "train", "maml", *TINY_FLAGS, *flags,
                            "--logdir", str(tmp_path / "x"))
    assert code == 2
    assert_one_line_error(err)
    assert message in err
    assert not (tmp_path / "x").exists()


@pytest.mark.smoke
def test_ctrl_c_saves_and_resume_continues(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gymlab", "train", "maml", *TINY_FLAGS, "--num-batches",
         "10000", "--logdir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (list(tmp_path.glob("*/progress.jsonl")) and len(records(
            next(tmp_path.glob("*/progress.jsonl")).parent)) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    (run,) = tmp_path.glob("maml-*")
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "resume with: gymlab" in err and str(run) in err
    done = len(records(run))
    assert (run / "checkpoints" / "last.pt").exists() and done >= 2
    agent = MAML.resume(run, num_batches=done + 1)
    assert agent.step == done
    with agent:
        agent.learn()
    assert [r["step"] for r in records(run)] == list(range(1, done + 2))


@pytest.mark.smoke
def test_cli_resume_or_eval_of_another_algorithm_is_refused(tmp_path, capsys):
    other = tmp_path / "dqn-run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"algo": "dqn"}))
    for args in (["meta", "maml", "--resume", str(other)], ["meta", "eval", str(other)]):
        code, _, err = run_main(capsys, *args)
        assert code == 2 and "is a dqn run, not a maml run" in err
        assert_one_line_error(err)


@pytest.mark.smoke
def test_cli_meta_eval_bad_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "maml-run"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"algo": "maml"}))
    cases = [([str(tmp_path / "nowhere")], "does not exist"),
             ([str(empty)], "has no checkpoint"),
             ([str(empty), "--grad-steps", "-1"], "--grad-steps must be >= 0"),
             ([str(empty), "--fast-lr", "0.5,x"], "--fast-lr takes numbers")]
    for args, message in cases:
        code, _, err = run_main(capsys, "meta", "eval", *args)
        assert code == 2 and message in err, err
        assert_one_line_error(err)


@pytest.mark.smoke
def test_mujoco_family_through_worker_processes(tmp_path):
    """HalfCheetahDir through the vector-env sampler: the same numbers with 1 or 2 workers."""
    pytest.importorskip("mujoco")
    states = []
    for workers in (1, 2):
        with MAML(env="HalfCheetahDir-v0", meta_batch_size=2, fast_batch_size=2,
                  max_episode_steps=20, num_batches=1, num_workers=workers, progress=False,
                  output_folder=str(tmp_path / f"w{workers}")) as agent:
            agent.learn()
            states.append((final_state(agent), records(tmp_path / f"w{workers}")))
            assert agent.config.meta_batch_size == 2
    assert torch.equal(states[0][0], states[1][0]) and states[0][1] == states[1][1]
    with MAML(env="HalfCheetahDir-v0", output_folder=str(tmp_path / "d")) as agent:
        assert agent.config.meta_batch_size == 40  # pytorch-maml-rl's MuJoCo configs
        assert agent.config.action_scale == 10.0
        assert agent.family.spec.max_episode_steps == 200  # the MAML paper's horizon


@pytest.mark.smoke
def test_mujoco_family_without_the_extra_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco now fails
    code, _, err = run_main(capsys, "train", "maml", "--env", "HalfCheetahDir-v0", *TINY_FLAGS,
                            "--logdir", str(tmp_path / "x"))
    assert code == 2 and 'pip install -e ".[mujoco]"' in err
    assert_one_line_error(err)
    with pytest.raises(ValueError, match="mujoco"):
        MAML(env="gymlab/AntPos-v0")


# -- learning -----------------------------------------------------------------------------------
@pytest.mark.learning
def test_maml_learns_to_adapt_on_2d_navigation(tmp_path):
    """A small budget (6 batches of 10 tasks x 10 episodes): one inner step must already
    improve the return by a clear margin on new goals."""
    with MAML(meta_batch_size=10, fast_batch_size=10, num_batches=6, seed=0,
              progress=False, output_folder=str(tmp_path / "run")) as agent:
        agent.learn()
        curve = agent.adaptation_curve(tasks=20, grad_steps=1, episodes=10)
    before, after = curve.mean
    assert before > -80 and after > before + 5, curve.table()
