"""TensorBoard event files of scalars, written without TensorBoard.

`torch.utils.tensorboard` imports the tensorboard package (and protobuf), a noticeable part of
a short run's start-up (benchmarks/startup.py). Scalars need only a few fields of the
`Event` protocol buffer, in TFRecord framing, which this module writes itself; TensorBoard
reads the files as its own (tested with its reader).
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from itertools import count
from pathlib import Path

_FLOAT32_MAX = 3.4028234663852886e38
_file_numbers = count()


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of TFRecord framing."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as their two's complement, as protobuf does
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, body: bytes) -> bytes:
    # Event: wall_time (1, double), step (2, int64), then the body's field
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + body


def _scalar_summary(tag: str, value: float) -> bytes:
    value = float(value)
    if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
        value = math.copysign(math.inf, value)
    # Summary.Value: tag (1, string), simple_value (2, float)
    entry = _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    return _field(1, entry)  # Summary: value (1, repeated Summary.Value)


class EventWriter:
    """Appends scalar events to a new `events.out.tfevents.*` file in `logdir`.

    `purge_step`: TensorBoard drops the events of earlier files at steps >= this one (a
    resumed run continues its curves instead of doubling back)."""

    def __init__(self, logdir: str | Path, purge_step: int | None = None) -> None:
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_numbers)}")
        self.path = Path(logdir) / name
        self.file = open(self.path, "wb")
        now = time.time()
        self._write(_event(purge_step or 0, now, _field(3, b"brain.Event:2")))  # file_version
        if purge_step is not None:
            # session_log (7): SessionLog with status (1) START (1)
            self._write(_event(purge_step, now, _field(7, b"\x08\x01")))

    def _write(self, event: bytes) -> None:
        length = struct.pack("<Q", len(event))
        self.file.write(length + struct.pack("<I", _masked_crc(length)) + event
                        + struct.pack("<I", _masked_crc(event)))

    def add_scalar(self, tag: str, value: float, step: int,
                   wall_time: float | None = None) -> None:
        body = _field(5, _scalar_summary(tag, value))  # summary (5)
        self._write(_event(int(step), time.time() if wall_time is None else wall_time, body))

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
