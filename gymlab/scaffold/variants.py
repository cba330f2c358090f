"""The parts of the generated environment that depend on --obs and --action.

Each variant is a set of snippets for templates/env.py.tmpl; everything else in the
environment (the grid, reset, reward, render) is the same for all nine combinations.
"""

from __future__ import annotations

OBSERVATIONS: dict[str, dict[str, str]] = {
    "box": {
        "obs_doc": "Box(0, 1, (4,)), the agent's and the target's (x, y) scaled to [0, 1]",
        "observation_space": "gym.spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)",
        "obs_type": "np.ndarray",
        "observation": """\
        cells = np.concatenate([self._agent, self._target])
        return (cells / (self.size - 1)).astype(np.float32)""",
        "sb3_policy": "MlpPolicy",
    },
    "dict": {
        "obs_doc": 'Dict with "agent" and "target", each Box(0, size - 1, (2,), int64): '
                   "(x, y) cells",
        "observation_space": """gym.spaces.Dict({
            "agent": gym.spaces.Box(0, size - 1, shape=(2,), dtype=np.int64),
            "target": gym.spaces.Box(0, size - 1, shape=(2,), dtype=np.int64),
        })""",
        "obs_type": "dict[str, np.ndarray]",
        "observation": """\
        # copies: an observation must not change when the environment moves on
        return {"agent": self._agent.copy(), "target": self._target.copy()}""",
        "sb3_policy": "MultiInputPolicy",
    },
    "discrete": {
        "obs_doc": "Discrete((2 * size - 1) ** 2), where the target is relative to the agent: "
                   "(dx, dy) numbered row by row",
        "observation_space": "gym.spaces.Discrete((2 * size - 1) ** 2)",
        "obs_type": "int",
        "observation": """\
        # the offset is all a policy needs; a one-hot of it is easy to learn from
        dx, dy = self._target - self._agent + (self.size - 1)
        return int(dy * (2 * self.size - 1) + dx)""",
        "sb3_policy": "MlpPolicy",
    },
}
"""--obs choice -> snippets; `observation` is the body of `_observation`."""

ACTIONS: dict[str, dict[str, str]] = {
    "discrete": {
        "action_doc": "Discrete(4), move right, up, left or down",
        "action_space": "gym.spaces.Discrete(4)",
        "action_type": "int",
        "constants": "MOVES = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])  "
                     "# right, up, left, down\n",
        "move_doc": "one of the four moves; into a wall: stay",
        "move": "MOVES[int(action)]",
    },
    "multidiscrete": {
        "action_doc": "MultiDiscrete([3, 3]), a step of -1, 0 or +1 along x and along y "
                      "(0, 1, 2)",
        "action_space": "gym.spaces.MultiDiscrete([3, 3])",
        "action_type": "np.ndarray",
        "constants": "",
        "move_doc": "0, 1, 2 along each axis: a step of -1, 0, +1 (diagonals allowed)",
        "move": "np.asarray(action, dtype=np.int64) - 1",
    },
    "box": {
        "action_doc": "Box(-1, 1, (2,)), rounded to a step of -1, 0 or +1 along x and along y",
        "action_space": "gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)",
        "action_type": "np.ndarray",
        "constants": "",
        "move_doc": "each coordinate rounded: below -0.5 a step back, above 0.5 a step on",
        "move": "np.rint(np.clip(action, -1.0, 1.0)).astype(np.int64)",
    },
}
"""--action choice -> snippets; `move` is the (dx, dy) step an action makes."""
