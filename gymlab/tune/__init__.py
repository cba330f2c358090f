"""Hyperparameter search over ordinary gymlab runs, in parallel with Ray Tune.

A search space maps config field names (of RunConfig or of the algorithm's Config) to a
*spec*: `grid` values (every one is tried), a `choice` among values, or a `uniform`,
`loguniform` or `randint` range. Everything is validated, and every value type-checked by
building the configs (and one agent), before Ray is even imported. Each trial is a normal
gymlab run with its own run directory, in a Ray worker process (reused by the next trial, which
saves a torch import per trial; every run seeds all generators itself, so a trial's numbers do
not depend on what ran before it) with `torch_threads` = CPUs per trial:

    <logdir>/tune-<algo>-<env>-<stamp>/
        tune_results.csv                 every trial: status, searched values, seed, metrics
        trial-000/<algo>-<env>-<stamp>/  the trial's run directory (config.json, checkpoints)
        trial-000/error.txt              the traceback, for a trial that crashed

Metrics (every trial reports all of them, after each evaluation and at its end; without
one named, a search optimises `steps_to_solve` where a stop reward is set, else the
algorithm's score):

- `steps_to_solve`: the step of the first evaluation whose mean return reached the stop
  reward; a trial that never solves counts as its max steps (`total_steps`).
- `wall_to_solve`: seconds from the start of training to that evaluation; a trial that never
  solves counts as the wall time of all its max steps (projected from its speed when it ended
  early: stopped by the scheduler, or diverged).
- `eval_return`: the best evaluation mean return; `last_eval_return`: the last one.

Ranking: for the *_to_solve metrics in min mode, solved trials come first, ties go to the
higher `eval_return`; failed trials come last. With `scheduler="asha"` trials are compared at
equal step counts (first rung at a tenth of the max steps, then every 3x) by their best
evaluation return so far, since the *_to_solve metrics say nothing until a trial solves.

Ray: started locally with every CPU (sessions under /tmp/ray, shut down at the end), or an
existing cluster (`ray_address`; a cluster with token authentication needs
RAY_AUTH_MODE=token). On a cluster each trial writes its run directory on the node it runs on,
at the same path: use a shared filesystem to find them all where the csv is.

Seeds: every trial of sample k (k = 0 .. samples-1) uses seed `seed + k`, so configs are
compared on the same seeds and repeats of one config differ. With `search="optuna"` grid values
become a categorical choice, the search runs grid size x samples trials, and every trial uses
`seed` (unless `seed` is itself searched).

    from gymlab import tune
    table = tune.run("dqn", "CartPole-v1",
                     {"learning_rate": tune.loguniform(1e-4, 1e-2),
                      "hidden_sizes": tune.grid((64,), (128, 128))},
                     samples=4, max_steps=50_000, eval_every=1_000)
    print(table.best, table.csv)

The package: `space` (the specs, parsing KEY=VALUES), `validate` (`check_space`), `plan` (the
Plan), `search` (`run`), `trial` (one trial in a Ray worker), `results` (`TuneResults`,
ranking, the csv), `display` (the live view), `values` (values as the command line writes
them, and through Ray). Ray itself is started or joined by `gymlab.core.ray`.
"""

from gymlab.tune.results import TuneResults, rank_key
from gymlab.tune.search import run
from gymlab.tune.space import (
    Choice,
    Grid,
    LogUniform,
    RandInt,
    Uniform,
    choice,
    grid,
    loguniform,
    parse_spec,
    randint,
    uniform,
)
from gymlab.tune.validate import METRICS, Plan, check_space

__all__ = ["Choice", "Grid", "LogUniform", "METRICS", "Plan", "RandInt", "TuneResults",
           "Uniform", "check_space", "choice", "grid", "loguniform", "parse_spec", "randint",
           "rank_key", "run", "uniform"]
