"""`gymlab/NASLayerwise-v0`: the architecture is chosen one layer per step.

The tutorial's announced next step. Action: Discrete(len(space) + 1), a layer id or `stop`
(the last id). The observation adds the partial architecture to NAS-v0's memory of recent
networks and curves. The network is trained when the agent stops or reaches `layers`; that
step is terminal and carries NAS-v0's reward for it, every other step gives 0.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gymlab.core.errors import UserError
from gymlab.nas.env import NASEnv


class NASLayerwiseEnv(NASEnv):
    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("edit_elites"):
            raise UserError("edit_elites is for gymlab/NAS-v0: here the actions are layer ids")
        super().__init__(**kwargs)
        n = len(self.space)
        self.stop_action = n
        self.action_space = gym.spaces.Discrete(n + 1)
        self.observation_space = gym.spaces.Dict({
            **self.observation_space.spaces,
            # ids so far; empty positions hold n + 1
            "partial": gym.spaces.Box(0, n + 1, (self.layers,), np.float32),
        })
        self._partial: list[int] = []
        self._started = False

    def _obs(self) -> dict[str, np.ndarray]:
        partial = np.full(self.layers, self.stop_action + 1, np.float32)
        partial[: len(self._partial)] = self._partial
        return {**super()._obs(), "partial": partial}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # the memory of networks persists across episodes (one episode = one network); only
        # an explicit seed starts a fresh memory
        if seed is not None or not self._started:
            super().reset(seed=seed)
            self._started = True
        self._partial = []
        return self._obs(), {}

    def step(self, action: Any):
        action = int(action)
        if action != self.stop_action:
            self._partial.append(action)
        if action != self.stop_action and len(self._partial) < self.layers:
            return self._obs(), 0.0, False, False, {"partial": list(self._partial)}
        none_id = next((i for i, c in enumerate(self.space.choices) if c.kind == "none"), None)
        ids = self._partial + ([none_id] * (self.layers - len(self._partial))
                               if none_id is not None else [])
        _, reward, _, _, info = super().step(ids)
        self._partial = []
        return self._obs(), reward, True, False, info
