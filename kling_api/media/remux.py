"""Join mp4s end to end without decoding them: the packets are copied with their timestamps shifted.

A batch of Kling videos comes from one request (same model, resolution, fps, audio), so their streams
match and one file can hold them all. That gives a batch's VIDEO output without decoding a single frame,
which matters when the frames output is not linked and a 4K batch would not fit in memory as IMAGE.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import KlingValidationError

logger = logging.getLogger(__name__)


def _layout(container: Any) -> list[tuple[str, str, int, int, str]]:
    """What must match for two files to be joined: per stream its kind, codec, size or rate, time base."""
    shape = []
    for stream in container.streams:
        if stream.type == "video":
            shape.append(("video", stream.codec_context.name, stream.codec_context.width,
                          stream.codec_context.height, str(stream.time_base)))
        elif stream.type == "audio":
            shape.append(("audio", stream.codec_context.name, stream.codec_context.sample_rate, 0,
                          str(stream.time_base)))
    return shape


def concat_videos(paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> Path:
    """``paths`` one after another in ``out`` (an mp4), copied packet by packet, never re-encoded.

    Refused (``KlingValidationError`` naming the file) when a file's streams differ from the first's:
    only videos of one request are joined."""
    if not paths:
        raise KlingValidationError("video", "no files", "at least one video to join")
    out_path = Path(out)
    inputs = [av.open(os.fspath(p)) for p in paths]
    try:
        first = _layout(inputs[0])
        for path, container in zip(paths[1:], inputs[1:]):
            if _layout(container) != first:
                raise KlingValidationError("video", os.fspath(path), f"streams like the batch's first video ({first})",
                                           f"video: {os.fspath(path)!r} cannot be joined to the batch's first video: "
                                           f"its streams differ ({_layout(container)} against {first})")
        with av.open(os.fspath(out_path), "w", format="mp4") as output:
            targets = {}
            for stream in inputs[0].streams:
                if stream.type in ("video", "audio"):
                    targets[stream.index] = output.add_stream_from_template(stream)
            start = Fraction(0)  # seconds: where the next file begins, on every stream alike
            for container in inputs:
                first: dict[int, int] = {}
                length = Fraction(0)
                for packet in container.demux():
                    index = packet.stream.index
                    if index not in targets or packet.dts is None:
                        continue  # a stream not copied, or a flush packet
                    base = first.setdefault(index, packet.dts)  # an encoder delay starts below 0
                    time_base = packet.time_base
                    shift = round(start / time_base) - base
                    last = max(packet.dts, packet.pts if packet.pts is not None else packet.dts)
                    length = max(length, (last - base + max(int(packet.duration or 0), 1)) * time_base)
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    packet.stream = targets[index]
                    output.mux(packet)
                start += length  # the longer stream decides, so sound and picture stay in step
    finally:
        for container in inputs:
            container.close()
    logger.info("Joined %d videos into %s without re-encoding", len(paths), out_path)
    return out_path


__all__ = ["concat_videos"]
