"""How bodies are stored: JSON, zstd-compressed when that pays.

Measured on Kubernetes objects of 2-10 KB (see README, "Storage"): zstd level 1
compresses ~3.4x at ~10 us per object, 3x faster than zlib level 1 at the same
ratio, and decompresses in ~6 us.  Bodies under ``MIN_COMPRESS`` bytes are kept
raw: there the frame overhead eats the gain.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgspec
import xxhash
import zstandard

RAW, ZSTD = 0, 1
MIN_COMPRESS = 256

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode
# zstd (de)compressor objects are not thread-safe (two threads sharing one crash the
# process), and bodies are decoded on the event loop, aiosqlite threads and workers:
# each thread gets its own.
_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "zstd", None)
    if pair is None:
        pair = _local.zstd = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
    return pair


class BodyError(ValueError):
    """A stored body could not be decoded."""


def to_json(value: Any) -> bytes:
    """A body as JSON bytes; raw bytes from the wire are kept as they are."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, msgspec.Raw):
        return bytes(value)
    return _json_encode(value)


def from_json(data: bytes) -> Any:
    try:
        return _json_decode(data)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: bytes that are not UTF-8
        raise BodyError(f"malformed body: {exc}") from None
    except RecursionError:
        raise BodyError("malformed body: nested too deeply") from None


#: A damaged zstd frame header can claim any size; no body the writer stores is near this.
MAX_FRAME = 1 << 30


def _decompress(data: bytes) -> bytes:
    """zstd, refusing a frame that claims more than MAX_FRAME (a flipped header byte would
    otherwise have the decompressor allocate it)."""
    size = zstandard.frame_content_size(data)
    if size > MAX_FRAME:
        raise zstandard.ZstdError(f"frame claims {size} bytes")
    return _zstd()[1].decompress(data)


#: Content address of a body, for de-duplication: 128-bit XXH3, ~20x faster than
#: BLAKE2b on 2-10 KB bodies (0.5 us vs 11 us).  The writer's bodies are not
#: adversarial; a 128-bit collision among a session's bodies is not a practical risk.
digest = xxhash.xxh3_128_digest


def pack(data: bytes) -> tuple[int, bytes]:
    """(codec, stored bytes) for a JSON body."""
    if len(data) >= MIN_COMPRESS:
        packed = _zstd()[0].compress(data)
        if len(packed) < len(data):
            return ZSTD, packed
    return RAW, data


def new_compressor() -> zstandard.ZstdCompressor:
    """A compressor with the settings ``pack`` uses, for another thread (they are not thread-safe)."""
    return zstandard.ZstdCompressor(level=1)


def compress_many(datas: Sequence[bytes], compressor: zstandard.ZstdCompressor) -> list[bytes]:
    """Compress bodies in one call that holds no GIL: twice as fast as a loop of
    ``compress`` on small bodies, and it runs beside Python code on another thread.
    The frames are the ones ``compress`` makes."""
    if not datas:
        return []
    multi = getattr(compressor, "multi_compress_to_buffer", None)
    if multi is None:  # the cffi backend lacks it
        return [compressor.compress(d) for d in datas]
    out = multi(list(datas), threads=1)
    return [out[i].tobytes() for i in range(len(out))]


def pack_many(datas: Sequence[bytes], compressed: Sequence[bytes]) -> list[tuple[int, bytes]]:
    """``pack``'s choice for each body, given ``compressed`` = compress_many(the bodies of
    at least MIN_COMPRESS bytes), in order."""
    out: list[tuple[int, bytes]] = []
    it = iter(compressed)
    for d in datas:
        if len(d) >= MIN_COMPRESS:
            packed = next(it)
            out.append((ZSTD, packed) if len(packed) < len(d) else (RAW, d))
        else:
            out.append((RAW, d))
    return out


def unpack(codec: int, data: bytes) -> bytes:
    if codec == RAW:
        return bytes(data)
    if codec == ZSTD:
        try:
            return _decompress(data)
        except (zstandard.ZstdError, MemoryError) as exc:
            raise BodyError(f"corrupted body: {exc or type(exc).__name__}") from None
    raise BodyError(f"unknown body codec {codec}")


def decode(codec: int, data: bytes) -> Any:
    return from_json(unpack(codec, data))


def encode_msgpack(value: Any) -> bytes:
    return _zstd()[0].compress(msgspec.msgpack.encode(value))


def decode_msgpack(data: bytes) -> Any:
    try:
        return msgspec.msgpack.decode(_decompress(data))
    except (zstandard.ZstdError, msgspec.DecodeError, MemoryError, RecursionError) as exc:
        raise BodyError(f"corrupted keyframe: {exc}") from None
