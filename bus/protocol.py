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
                              topic "$view:<key>": a store view that changed, body {key, value},
                                seq = last committed seq, no seq consumed
snapshot DEALER -> ROUTER   1 frame: msgpack {op: "snapshot", req, keys: [..] | nil}
         ROUTER -> DEALER   1 frame: msgpack {req, seq, epoch, state: {key: document}}
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Final

PROTOCOL_VERSION: Final = 2

ACK: Final = "A"
DUPLICATE: Final = "D"
OUT_OF_ORDER: Final = "O"
NACK: Final = "N"

HUB_TOPIC: Final = b"$hub"
VIEW_TOPIC_PREFIX: Final = b"$view:"  # + the view's key: a view published because a commit changed it

SEQ_STRUCT: Final = struct.Struct(">Q")

# Frames larger than this are refused with FRAME_TOO_LARGE; the socket-level hard cap
# (ZMQ_MAXMSGSIZE) is a multiple of it and disconnects the peer instead.
DEFAULT_MAX_FRAME_BYTES: Final = 1 << 20


class ErrorCode(StrEnum):
    """Machine-readable NACK codes. A NACKed message was never applied; resending it is pointless."""

    MALFORMED = "malformed"
    BAD_FRAMES = "bad_frames"
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    INVALID_FIELD = "invalid_field"
    CONTRACT_BREACH = "contract_breach"
    BOUND_EXCEEDED = "bound_exceeded"
    UNAUTHORIZED = "unauthorized"
    BAD_REQUEST = "bad_request"
    INTERNAL = "internal"


# What each code means and who sees it (rendered into docs/bus_protocol.md).
ERROR_CODE_HELP: Final[dict[ErrorCode, str]] = {
    ErrorCode.MALFORMED: "Not msgpack, not a map, a map key repeated, containers nested deeper than 32 levels, "
                         "or an envelope field missing, of the wrong type, out of range, or extra (`field` names "
                         "it). Also a message without a string `type`.",
    ErrorCode.BAD_FRAMES: "Wrong number of frames: ingest and snapshot requests are exactly one frame "
                          "(no empty delimiter frame; use DEALER, not REQ).",
    ErrorCode.FRAME_TOO_LARGE: "The frame, or the message completed with its defaults, exceeds "
                               "`bus.max_frame_bytes` (default 1 MiB). Frames over 4x that are dropped by the "
                               "socket and the connection is closed, without a NACK (section 2).",
    ErrorCode.UNKNOWN_TYPE: "`msg.type` names no message type this hub knows.",
    ErrorCode.UNSUPPORTED_VERSION: "`msg.v` is not a version this hub supports for that type (the detail lists "
                                   "the supported versions).",
    ErrorCode.INVALID_FIELD: "A field failed validation: wrong type, out of range, NaN/inf, unknown key, "
                             "missing required field. `field` is its dotted path (`positions.0.qty`).",
    ErrorCode.CONTRACT_BREACH: "Every field is valid but the message would break a state-file contract "
                               "(a non-zero qty row with entry_price or mark_price <= 0). Refused whole; the last "
                               "good file stays. `field` names the offending row.",
    ErrorCode.BOUND_EXCEEDED: "Every field is valid but applying the message would take an aggregate past its "
                              "bound (a fill that would make a stored position larger than 10^15, counting the "
                              "committed position and the earlier messages of the same batch). Never applied.",
    ErrorCode.UNAUTHORIZED: "The sender may not send this message type: `src` is not one of its producers (section 7's "
                            "table), a heartbeat names another actor than `src`, or the client's CURVE key may not "
                            "speak as `src`. `field` is `src` or `actor`. Never applied.",
    ErrorCode.BAD_REQUEST: "Snapshot service only: unknown `op`, `keys` not a list of strings, or unknown keys.",
    ErrorCode.INTERNAL: "Snapshot service only: the hub failed to build a view; the request may be retried.",
}

def pack_seq(seq: int) -> bytes:
    return SEQ_STRUCT.pack(seq)


def unpack_seq(frame: bytes) -> int:
    return SEQ_STRUCT.unpack(frame)[0]
