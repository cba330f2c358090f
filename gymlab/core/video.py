"""MP4 videos of a policy acting, rendered with render_mode="rgb_array"."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gymlab.core.envs import make_env
from gymlab.core.errors import UserError


def check_recordable(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Raise a UserError unless `env_id` renders rgb_array and the video extra is installed."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise UserError("recording needs the video extra: pip install 'gymlab[video]'") from None
    env = make_env(env_id, kwargs=env_kwargs)
    modes = env.metadata.get("render_modes", [])
    env.close()
    if "rgb_array" not in modes:
        raise UserError(f"{env_id} cannot be recorded: it has no rgb_array rendering "
                        f"(render modes: {', '.join(modes) or 'none'})")


def record_video(act: Callable[[Any], Any], env_id: str, path: str | Path, episodes: int = 1,
                 seed: int = 0, env_kwargs: dict[str, Any] | None = None) -> int:
    """Write `episodes` episodes of `act` (raw observation -> action) to an MP4 at `path`.
    Returns the number of frames (each episode: its first frame plus one per step)."""
    check_recordable(env_id, env_kwargs)
    import imageio_ffmpeg

    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise UserError(f"the video file must end in .mp4, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    import gymnasium as gym

    # rgb_array rendering draws off-screen; without these pygame's SDL looks for a display
    # and a sound server and complains on headless machines
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = make_env(env_id, render_mode="rgb_array", kwargs=env_kwargs)
    fps = int(env.metadata.get("render_fps") or 30)
    tmp = path.with_name(path.stem + ".tmp.mp4")
    writer = None
    frames = 0
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            done = False
            while True:
                frame = _even(np.asarray(env.render()))
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp), (width, height), fps=fps, macro_block_size=1,
                        pix_fmt_out="yuv420p", output_params=["-loglevel", "error"])
                    writer.send(None)
                writer.send(np.ascontiguousarray(frame))
                frames += 1
                if done:
                    break
                obs, _, terminated, truncated, _ = env.step(act(obs))
                done = terminated or truncated
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"rendering {env_id} needs an optional dependency: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
        env.close()
    os.replace(tmp, path)
    return frames


def _even(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sides: pad by one row/column where odd."""
    h, w = frame.shape[:2]
    return np.pad(frame[..., :3], ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")

