"""How bodies are stored: JSON, zstd-compressed when that pays.

Measured on Kubernetes objects of 2-10 KB (see README, "Storage"): zstd level 1
compresses ~3.4x at ~10 us per object, 3x faster than zlib level 1 at the same
ratio, and decompresses in ~6 us.  Bodies under ``MIN_COMPRESS`` bytes are kept
raw: there the frame overhead eats the gain.

A session's later bodies are compressed with a dictionary trained on its first
ones (``ZSTD_DICT``; Kubernetes objects share most of their keys and much of their
values): measured on the synthetic benchmark's 5-7 KB objects, 2.4x smaller than
plain zstd (ratio ~9.7 instead of ~4), compressing and decompressing no slower.  The
frame names its dictionary (``dictionaries.id``); ``Dictionaries`` holds a
recording's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import msgspec
import xxhash
import zstandard

RAW, ZSTD, ZSTD_DICT = 0, 1, 2
MIN_COMPRESS = 256
DICT_SIZE = 65536  # bytes of a trained dictionary
DICT_BASE = 32768  # a session's dictionary id is DICT_BASE + its id (zstd reserves ids below 32768)

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


def pack_many(datas: Sequence[bytes], compressed: Sequence[bytes],
              codecs: Sequence[int] | None = None) -> list[tuple[int, bytes]]:
    """``pack``'s choice for each body, given ``compressed`` = compress_many(the bodies of
    at least MIN_COMPRESS bytes), in order; ``codecs`` says how each of those was
    compressed (ZSTD when not given)."""
    out: list[tuple[int, bytes]] = []
    it = iter(compressed)
    kinds = iter(codecs) if codecs is not None else None
    for d in datas:
        if len(d) >= MIN_COMPRESS:
            packed = next(it)
            kind = next(kinds) if kinds is not None else ZSTD
            out.append((kind, packed) if len(packed) < len(d) else (RAW, d))
        else:
            out.append((RAW, d))
    return out


def train(samples: list[bytes], dict_id: int) -> zstandard.ZstdCompressionDict:
    """A dictionary for a session's bodies (holds no GIL: run on the writer's worker thread)."""
    return zstandard.train_dictionary(DICT_SIZE, list[bytes | bytearray | memoryview](samples),
                                      dict_id=dict_id, level=1)


def dict_compressor(dictionary: zstandard.ZstdCompressionDict) -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(level=1, dict_data=dictionary)


class Dictionaries:
    """A recording's zstd dictionaries by id, with a decompressor per thread for each."""

    def __init__(self) -> None:
        self._dicts: dict[int, zstandard.ZstdCompressionDict] = {}
        self._local = threading.local()

    @classmethod
    def of(cls, conn: Any) -> Dictionaries:
        """Every dictionary of a recording open with plain ``sqlite3`` (scripts, tests)."""
        dicts = cls()
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'dictionaries'").fetchone():
            for dict_id, data in conn.execute("SELECT id, data FROM dictionaries"):
                dicts.add(dict_id, data)
        return dicts

    def __contains__(self, dict_id: int) -> bool:
        return dict_id in self._dicts

    def add(self, dict_id: int, data: bytes) -> None:
        self._dicts[dict_id] = zstandard.ZstdCompressionDict(bytes(data))

    def decompress(self, data: bytes) -> bytes:
        try:
            dict_id = zstandard.get_frame_parameters(data).dict_id
        except zstandard.ZstdError as exc:
            raise BodyError(f"corrupted body: {exc}") from None
        cache = getattr(self._local, "decompressors", None)
        if cache is None:
            cache = self._local.decompressors = {}
        decompressor = cache.get(dict_id)
        if decompressor is None:
            dictionary = self._dicts.get(dict_id)
            if dictionary is None:
                raise BodyError(f"corrupted body: dictionary {dict_id} is missing")
            decompressor = cache[dict_id] = zstandard.ZstdDecompressor(dict_data=dictionary)
        try:
            size = zstandard.frame_content_size(data)
            if size > MAX_FRAME:
                raise zstandard.ZstdError(f"frame claims {size} bytes")
            return decompressor.decompress(data)
        except (zstandard.ZstdError, MemoryError) as exc:
            raise BodyError(f"corrupted body: {exc or type(exc).__name__}") from None

    @staticmethod
    def frame_dict_id(data: bytes) -> int | None:
        try:
            return zstandard.get_frame_parameters(data).dict_id
        except zstandard.ZstdError:
            return None


def unpack(codec: int, data: bytes, dicts: Dictionaries | None = None) -> bytes:
    if codec == RAW:
        return bytes(data)
    if codec == ZSTD:
        try:
            return _decompress(data)
        except (zstandard.ZstdError, MemoryError) as exc:
            raise BodyError(f"corrupted body: {exc or type(exc).__name__}") from None
    if codec == ZSTD_DICT:
        if dicts is None:
            raise BodyError("corrupted body: compressed with a dictionary the reader does not have")
        return dicts.decompress(data)
    raise BodyError(f"unknown body codec {codec}")


def decode(codec: int, data: bytes, dicts: Dictionaries | None = None) -> Any:
    return from_json(unpack(codec, data, dicts))


def encode_msgpack(value: Any) -> bytes:
    return _zstd()[0].compress(msgspec.msgpack.encode(value))


def decode_msgpack(data: bytes) -> Any:
    try:
        return msgspec.msgpack.decode(_decompress(data))
    except (zstandard.ZstdError, msgspec.DecodeError, MemoryError, RecursionError) as exc:
        raise BodyError(f"corrupted keyframe: {exc}") from None
