"""TensorBoard event files, written without TensorFlow or tensorboard installed.

A torch-only or JAX-only install can still write loss curves and step times that
TensorBoard reads: an event file is a sequence of TFRecords (length, masked CRC-32C of
the length, payload, masked CRC-32C of the payload), each payload a serialised
`tensorflow.Event` protobuf. We write the three messages we need by hand:

    Event          wall_time (1: double), step (2: int64), file_version (3: string),
                   summary (5: Summary)
    Summary        value (1: repeated Value)
    Summary.Value  tag (1: string), simple_value (2: float), histo (5: HistogramProto)
    HistogramProto min (1), max (2), num (3), sum (4), sum_squares (5): double;
                   bucket_limit (6), bucket (7): packed doubles, bucket i counting the
                   values up to bucket_limit[i] (and above the limit before it)

Histograms (per-layer weights and gradients, `fwbench study --histograms N`) use
HISTOGRAM_BINS equal buckets from the values' min to their max, as TensorBoard's own
summary op does; TensorBoard's event reader reads them (tests/test_tensorboard.py).

Layout: <root>/<run>/events.out.tfevents.<unix time>.<host>.fwbench, one file per run;
TensorBoard overlays runs that share a tag, so the frameworks of one item or cell sit
side by side under the same tag.
"""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

_CRC32C_TABLE: list[int] = []


def _crc32c_table() -> list[int]:
    if not _CRC32C_TABLE:
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
            _CRC32C_TABLE.append(crc)
    return _CRC32C_TABLE


def crc32c(data: bytes) -> int:
    table = _crc32c_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields: negative numbers as ten-byte two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def event_bytes(wall_time: float, step: int = 0, scalars: Mapping[str, float] | None = None,
                file_version: str | None = None) -> bytes:
    """One serialised Event holding `scalars` (tag -> value) at `step`."""
    out = bytearray(_varint(1 << 3 | 1) + struct.pack("<d", wall_time))
    out += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5)
                         + struct.pack("<f", float(value)))
            for tag, value in scalars.items())
        out += _field_bytes(5, values)
    return bytes(out)


HISTOGRAM_BINS = 30  # tf.summary.histogram's default bucket count


def histogram_bytes(values: np.ndarray) -> bytes:
    """A serialised HistogramProto of the finite `values`: HISTOGRAM_BINS equal buckets
    from their min to their max (one bucket when every value is the same)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    low, high = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if high > low:
        counts, edges = np.histogram(v, bins=HISTOGRAM_BINS, range=(low, high))
        limits = edges[1:]
    else:
        counts, limits = np.array([v.size]), np.array([high])
    out = bytearray()
    for number, value in ((1, low), (2, high), (3, float(v.size)), (4, float(v.sum())),
                          (5, float((v * v).sum()))):
        out += _varint(number << 3 | 1) + struct.pack("<d", value)
    out += _field_bytes(6, np.asarray(limits, dtype="<f8").tobytes())
    out += _field_bytes(7, np.asarray(counts, dtype="<f8").tobytes())
    return bytes(out)


def histogram_event_bytes(wall_time: float, step: int, histograms: Mapping[str, np.ndarray]) -> bytes:
    """One serialised Event holding a histogram per tag at `step`."""
    values = b"".join(_field_bytes(1, _field_bytes(1, tag.encode()) + _field_bytes(5, histogram_bytes(v)))
                      for tag, v in histograms.items())
    return (_varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0)
            + _varint(int(step)) + _field_bytes(5, values))


def record_bytes(payload: bytes) -> bytes:
    """`payload` framed as one TFRecord."""
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", masked_crc32c(length)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


class EventFile:
    """One run's event file; scalars are buffered and written on `close`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = self.run_dir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.fwbench"
        self._buffer = bytearray(record_bytes(event_bytes(now, 0, file_version="brain.Event:2")))

    def scalars(self, step: int, values: Mapping[str, float], wall_time: float | None = None) -> None:
        finite = {k: v for k, v in values.items() if v is not None and v == v}
        if finite:
            self._buffer += record_bytes(event_bytes(wall_time or time.time(), step, finite))

    def histograms(self, step: int, values: Mapping[str, np.ndarray],
                   wall_time: float | None = None) -> None:
        """A histogram of each array (tag -> values) at `step`."""
        if values:
            self._buffer += record_bytes(histogram_event_bytes(wall_time or time.time(), step, values))

    def curve(self, tag: str, values: Sequence[float], first_step: int = 0) -> None:
        """`values[i]` at step first_step + i."""
        now = time.time()
        for i, value in enumerate(values):
            self.scalars(first_step + i, {tag: value}, now)

    def close(self) -> Path:
        with open(self.path, "ab") as f:
            f.write(self._buffer)
        self._buffer = bytearray()
        return self.path


def write_curves(run_dir: Path, curves: Mapping[str, Sequence[float]],
                 first_steps: Mapping[str, int] | None = None) -> Path:
    """One event file in `run_dir` with each curve (tag -> values by step)."""
    events = EventFile(run_dir)
    for tag, values in curves.items():
        events.curve(tag, values, (first_steps or {}).get(tag, 0))
    return events.close()


class StudyWriter:
    """Event files of one framework's items in a study: <root>/<study id>/<item>/<framework>."""

    def __init__(self, root: Path, study_id: str, framework: str) -> None:
        self.root, self.study_id, self.framework = Path(root), study_id, framework

    def item(self, item_id: str, curves: Mapping[str, Sequence[float]],
             snapshots: Sequence[tuple[int, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]] = (),
             ) -> Path | None:
        """The item's curves, and per snapshot (step, weights, gradients) a histogram of
        each parameter, tagged weights/<canonical name> and gradients/<canonical name>."""
        if not curves and not snapshots:
            return None
        events = EventFile(self.root / self.study_id / item_id / self.framework)
        for tag, values in curves.items():
            events.curve(tag, values)
        for step, weights, grads in snapshots:
            events.histograms(step, {**{f"weights/{k}": v for k, v in weights.items()},
                                     **{f"gradients/{k}": v for k, v in grads.items()}})
        return events.close()


def read_scalars(path: Path) -> Iterable[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in one of our event files; checks each CRC.
    For tests and for a look without TensorBoard; TensorBoard itself reads any of them."""
    data = Path(path).read_bytes()
    at = 0
    while at < len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        payload = data[at + 12: at + 12 + length]
        (payload_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if masked_crc32c(data[at:at + 8]) != length_crc or masked_crc32c(payload) != payload_crc:
            raise ValueError(f"{path}: bad CRC in the record at byte {at}")
        yield from _scalars_of(payload)
        at += 16 + length


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterable[tuple[int, int, object]]:
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        elif wire == 2:
            size, at = _read_varint(data, at)
            value, at = data[at:at + size], at + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _scalars_of(event: bytes) -> Iterable[tuple[int, str, float]]:
    step = 0
    summaries = []
    for number, _, value in _fields(event):
        if number == 2:
            step = value
        elif number == 5:
            summaries.append(value)
    for summary in summaries:
        for number, _, value in _fields(summary):
            if number != 1:
                continue
            tag, simple = None, None
            for n, _, v in _fields(value):
                if n == 1:
                    tag = v.decode()
                elif n == 2:
                    simple = struct.unpack("<f", v)[0]
            if tag is not None and simple is not None:
                yield step, tag, simple


def write_run(run_dir: Path, root: Path) -> list[Path]:
    """Event files for every measured cell process of a `fwbench run` folder, one
    TensorBoard run per process: <root>/<run id>/<cell id>.r<repeat>, with the tags
    loss (every step from the first), step_ms/warmup (the untimed warm-up steps) and
    step_ms/timed (the steady-state samples), all on one step axis. Cells that failed,
    and records from before the curves were kept, have nothing to write."""
    from bench import results

    run_dir = Path(run_dir)
    written = []
    for path in sorted((run_dir / "cells").glob("*.json")):
        record = results.read_json(path)
        losses, warm, timed = record.get("losses"), record.get("warmup_ms") or [], record.get("samples_ms")
        if record.get("status") != "ok" or not losses:
            continue
        events = EventFile(Path(root) / run_dir.name / path.stem)
        events.curve("loss", losses)
        events.curve("step_ms/warmup", warm, first_step=1)
        events.curve("step_ms/timed", timed or [], first_step=1 + len(warm))
        written.append(events.close())
    return written
