"""Wire protocol constants: frames, reply kinds, error codes (docs/bus_protocol.md is the spec).

ingest   DEALER -> ROUTER   1 frame: msgpack envelope {src, inc, sseq, oldest, ts, msg}
         ROUTER -> DEALER   1 frame: msgpack array of replies
                              ["A", sseq, seq]                      committed as `seq`
                              ["D", sseq, seq]                      duplicate of a committed message (seq 0: unknown)
                              ["O", sseq, expected]                 out of order: not applied, resend from `expected`
                              ["N", sseq|nil, code, field|nil, detail]   rejected, never applied
updates  XPUB   -> SUB      3 frames: [topic, seq (u64 big-endian), body]
                              topic = message type; body = the envelope bytes as committed
                              topic "$hub": hub heartbeat, seq = last committed seq, no seq consumed
snapshot DEALER -> ROUTER   1 frame: msgpack {op: "snapshot", req, keys: [..] | nil}
         ROUTER -> DEALER   1 frame: msgpack {req, seq, epoch, state: {key: document}}
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Final

PROTOCOL_VERSION: Final = 1

ACK: Final = "A"
DUPLICATE: Final = "D"
OUT_OF_ORDER: Final = "O"
NACK: Final = "N"

HUB_TOPIC: Final = b"$hub"

SEQ_STRUCT: Final = struct.Struct(">Q")

# Frames larger than this are refused with FRAME_TOO_LARGE; the socket-level hard cap
# (ZMQ_MAXMSGSIZE) is a multiple of it and disconnects the peer instead.
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20


class ErrorCode(StrEnum):
    """Machine-readable NACK codes. A NACKed message was never applied; resending it is pointless."""

    MALFORMED = "malformed"  # not msgpack, not a map, or envelope fields missing/wrong type
    BAD_FRAMES = "bad_frames"  # wrong number of frames for the socket
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_FIELD = "invalid_field"  # a field failed validation (type, range, NaN/inf, unknown key)
    CONTRACT_BREACH = "contract_breach"  # valid fields that would break a state-file contract
    BAD_REQUEST = "bad_request"  # snapshot service: unknown op or key


def pack_seq(seq: int) -> bytes:
    return SEQ_STRUCT.pack(seq)


def unpack_seq(frame: bytes) -> int:
    return SEQ_STRUCT.unpack(frame)[0]
