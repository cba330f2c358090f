"""Unit tests: configs derive flags, defaults and validation from the dataclasses."""

import argparse

import pytest

from gymlab.agents.dqn import DQN, DQNConfig
from gymlab.core.algorithm import resolve_configs, tuned_defaults
from gymlab.core.config import add_arguments, build, field_docs, parse_value
from gymlab.core.errors import UserError
from gymlab.core.run import RunConfig
from gymlab.registry import ALGORITHMS, algorithm


def test_every_field_has_a_docstring():
    for cls in (RunConfig, DQNConfig):
        docs = field_docs(cls)
        missing = [f for f in cls.__dataclass_fields__ if not docs.get(f)]
        assert missing == [], f"{cls.__name__} fields without a docstring: {missing}"


def test_flags_show_doc_and_default():
    parser = argparse.ArgumentParser()
    add_arguments(parser, DQNConfig, "dqn")
    text = parser.format_help()
    assert "--target-update-interval" in text and "(default: 250)" in text
    assert "Replay memory capacity" in text
    assert parser.parse_args(["--hidden-sizes", "32,16"]).hidden_sizes == (32, 16)
    assert parser.parse_args(["--double-q", "true"]).double_q is True
    assert not hasattr(parser.parse_args([]), "gamma")  # unset flags stay unset


def test_parse_value_types():
    assert parse_value(float | None, "none") is None
    assert parse_value(float | None, "2.5") == 2.5
    with pytest.raises(ValueError, match="expected int"):
        parse_value(int, "x")


def test_precedence_dataclass_then_table_then_user():
    run, cfg = resolve_configs(DQN, "Acrobot-v1", {"batch_size": 7})
    assert cfg.batch_size == 7  # user
    assert cfg.learning_rate == DQN.TUNED["Acrobot-v1"]["learning_rate"]  # table
    assert cfg.loss == DQNConfig().loss  # dataclass
    assert run.env == "Acrobot-v1"


def test_unknown_option_suggests_close_names():
    with pytest.raises(UserError, match="did you mean learning_rate"):
        resolve_configs(DQN, "CartPole-v1", {"learning_rat": 1e-3})


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"learning_rate": -1.0},
                                 {"buffer_size": -5}, {"gamma": 1.5}, {"activation": "foo"}])
def test_bad_values_raise_value_error(bad):
    with pytest.raises(ValueError):
        build(DQNConfig, bad)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_tuned_tables_use_real_fields(name):
    cls = algorithm(name)
    for env_id, values in cls.TUNED.items():
        assert values, env_id
        run, cfg = resolve_configs(cls, env_id, {})  # raises on an unknown key
        for key, value in values.items():
            got = getattr(run if hasattr(run, key) else cfg, key)
            assert got == (tuple(value) if isinstance(value, list) else value), (env_id, key)


def test_tuned_lookup_takes_either_spelling_of_gymlab_ids():
    class Fake:
        TUNED = {"Navigation2D-v0": {"seed": 3}}

    assert tuned_defaults(Fake, "gymlab/Navigation2D-v0") == {"seed": 3}
    assert tuned_defaults(Fake, "Navigation2D-v0") == {"seed": 3}
    assert tuned_defaults(Fake, "CartPole-v1") == {}
