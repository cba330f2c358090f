"""C sources built on first use into a cached shared library, loaded with ctypes.

A library is named by a hash of its sources and flags under $GYMLAB_CACHE (default
~/.cache/gymlab), so an edited source is rebuilt and an unchanged one is loaded in
milliseconds; concurrent builds each land a whole file (temporary name, then os.replace).
The compiler is `$CC`, else `cc`. GYMLAB_NATIVE=0 switches every native path off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path


def enabled() -> bool:
    """False when GYMLAB_NATIVE=0 asks for the pure-Python paths."""
    return os.environ.get("GYMLAB_NATIVE", "1") != "0"


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gymlab"
    return Path(os.environ.get("GYMLAB_CACHE", default))


def build(name: str, sources: list[Path], flags: tuple[str, ...]) -> Path:
    """The shared library `name`-<hash>.so built from `sources` with `flags` (once per source
    text, compiler and flags). Raises OSError or subprocess.SubprocessError when it cannot."""
    compiler = os.environ.get("CC", "cc")
    path = shutil.which(compiler)
    if path is None:
        raise OSError(f"no C compiler {compiler!r} on PATH")
    key = hashlib.sha256(" ".join((compiler, *flags)).encode())
    for source in sources:
        key.update(source.read_bytes())
    target = cache_dir() / f"{name}-{key.hexdigest()[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.stem}.{os.getpid()}.partial")
        try:
            subprocess.run([path, *flags, *map(str, sources), "-o", str(partial), "-lm"],
                           check=True, capture_output=True, timeout=300)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def load(name: str, sources: list[Path], flags: tuple[str, ...]) -> ctypes.CDLL:
    """The built library, loaded (see build for what it raises)."""
    return ctypes.CDLL(str(build(name, sources, flags)))
