"""Reading back the videos gymlab writes."""

from pathlib import Path


def count_frames(path: str | Path) -> int:
    """The number of frames in a video file (decoded, not read from the header)."""
    import imageio_ffmpeg

    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    return frames
