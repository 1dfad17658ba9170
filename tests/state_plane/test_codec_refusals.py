"""Every refusal of bus/codec.py pinned exactly: code, field and detail, at and just past each limit.

Example-based and fast, so the mutation run (tools/mutation.py codec) can afford them per mutant.
"""

from __future__ import annotations

import time

import msgpack
import pytest

from bus import codec
from bus.codec import MAX_DEPTH, U64_MAX, BusError
from bus.protocol import DEFAULT_MAX_FRAME_BYTES, ErrorCode
from tests.support.messages import kpis, position, positions, sample_ledger

M = ErrorCode.MALFORMED
HEAD = {"src": "me", "inc": 1, "sseq": 1, "oldest": 1, "ts": 1.5}


def _msg() -> dict:
    return kpis().to_wire()


def _frame(**over) -> bytes:
    env = {**HEAD, "msg": _msg(), **over}
    return msgpack.packb({k: v for k, v in env.items() if v is not _DROP}, use_bin_type=True)


_DROP = object()


def _refused(fn, *args, **kwargs) -> BusError:
    with pytest.raises(BusError) as info:
        fn(*args, **kwargs)
    return info.value


def _check(err: BusError, code: ErrorCode, detail: str, field: str | None) -> None:
    assert (err.code, err.detail, err.field) == (code, detail, field)
    assert str(err) == f"{code.value}: {detail}" + (f" (field {field})" if field else "")


# ---- BusError -------------------------------------------------------------------------------

def test_bus_error_text() -> None:
    err = BusError(ErrorCode.INTERNAL, "boom")
    assert (err.code, err.detail, err.field, str(err)) == (ErrorCode.INTERNAL, "boom", None, "internal: boom")
    err = BusError(M, "bad", "src")
    assert str(err) == "malformed: bad (field src)"


# ---- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("msg", [positions(position(), position("ETHUSDT", 0.0, 0.0, 0.0)), sample_ledger(3), kpis()],
                         ids=["positions", "ledger", "kpis"])
def test_round_trip_every_header_field(msg) -> None:
    frame = codec.encode_envelope("me", 7, 3, msg, ts=1.5, oldest=2)
    env = codec.decode_envelope(frame)
    assert env == codec.Envelope("me", 7, 3, 2, 1.5, msg)
    head, raw = codec.decode_header(frame)
    assert head == codec.Header("me", 7, 3, 2, 1.5)
    assert raw == msg.to_wire()
    assert codec.decode_message(raw) == msg
    assert codec.pack_message(msg) == msgpack.packb(msg.to_wire(), use_bin_type=True)
    assert codec.encode_message is codec.pack_message


def test_build_envelope_layout() -> None:
    packed = codec.pack_message(kpis())
    frame = codec.build_envelope("s", 2, 9, 4, 3, packed)
    assert frame[:1] == b"\x86"
    assert frame.endswith(msgpack.packb("msg") + packed)
    obj = msgpack.unpackb(frame)
    assert list(obj) == ["src", "inc", "sseq", "oldest", "ts", "msg"]
    assert obj["ts"] == 3.0 and type(obj["ts"]) is float
    assert (obj["src"], obj["inc"], obj["sseq"], obj["oldest"]) == ("s", 2, 9, 4)


def test_encode_envelope_defaults() -> None:
    before = time.time()
    env = codec.decode_envelope(codec.encode_envelope("me", 1, 5, kpis()))
    after = time.time()
    assert env.oldest == 5
    assert before <= env.ts <= after
    assert codec.decode_envelope(codec.encode_envelope("me", 1, 5, kpis(), ts=0.0)).ts == 0.0
    assert codec.decode_envelope(codec.encode_envelope("me", 1, 5, kpis(), oldest=1)).oldest == 1


def test_ts_normalised_to_float() -> None:
    head, _ = codec.decode_header(_frame(ts=7))
    assert head.ts == 7.0 and type(head.ts) is float
    env = codec.decode_envelope(_frame(ts=-2))
    assert env.ts == -2.0 and type(env.ts) is float
    assert codec.decode_header(_frame(ts=0))[0].ts == 0.0
    assert codec.decode_header(_frame(ts=-1.5e300))[0].ts == -1.5e300


def test_pack_unpack_protocol_frames() -> None:
    obj = {"a": [1, 2.5, None, True], "b": b"\xff\x00", "c": "é"}
    frame = codec.pack(obj)
    assert frame == msgpack.packb(obj, use_bin_type=True)
    assert codec.unpack(frame) == obj
    assert type(codec.unpack(frame)["b"]) is bytes


# ---- size limits ----------------------------------------------------------------------------

def _bin_frame(size: int) -> bytes:
    frame = msgpack.packb(b"x" * (size - 5), use_bin_type=True)  # bin32: 5 header bytes
    assert len(frame) == size
    return frame


def test_frame_size_default_limit() -> None:
    at = _bin_frame(DEFAULT_MAX_FRAME_BYTES)
    over = _bin_frame(DEFAULT_MAX_FRAME_BYTES + 1)
    assert codec.unpack(at) == b"x" * (DEFAULT_MAX_FRAME_BYTES - 5)
    detail = f"frame of {DEFAULT_MAX_FRAME_BYTES + 1} bytes exceeds {DEFAULT_MAX_FRAME_BYTES}"
    for fn in (codec.unpack, codec.decode_header, codec.decode_envelope):
        _check(_refused(fn, over), ErrorCode.FRAME_TOO_LARGE, detail, None)
    for fn in (codec.decode_header, codec.decode_envelope):
        _check(_refused(fn, at), M, "envelope must be a map", None)


def test_frame_size_explicit_limit() -> None:
    frame = _frame()
    n = len(frame)
    assert codec.decode_envelope(frame, n).sseq == 1
    assert codec.decode_header(frame, n)[0].sseq == 1
    assert codec.unpack(frame, n)["sseq"] == 1
    for fn in (codec.unpack, codec.decode_header, codec.decode_envelope):
        _check(_refused(fn, frame, n - 1), ErrorCode.FRAME_TOO_LARGE, f"frame of {n} bytes exceeds {n - 1}", None)


# ---- unpacking ------------------------------------------------------------------------------

@pytest.mark.parametrize(("frame", "name"), [
    (b"", "ValueError"),
    (b"\xc1", "FormatError"),
    (msgpack.packb(1) + msgpack.packb(2), "ExtraData"),
    (msgpack.packb({1: "a"}), "ValueError"),            # strict map keys: only str/bytes keys
    (msgpack.packb("\xff".encode("latin-1"), use_bin_type=False), "UnicodeDecodeError"),
])
def test_not_msgpack(frame: bytes, name: str) -> None:
    _check(_refused(codec.unpack, frame), M, f"not a msgpack document: {name}", None)
    _check(_refused(codec.decode_envelope, frame), M, f"not a msgpack document: {name}", None)


def test_str_keys_are_str() -> None:
    head, raw = codec.decode_header(_frame())
    assert type(head.src) is str and raw["type"] == "kpis_v7"


def _dup_frame(key: str, inner: bool = False) -> bytes:
    packer = msgpack.Packer()
    if inner:
        body = packer.pack_map_header(3) + packer.pack("type") + packer.pack("kpis_v7") + packer.pack(key) \
            + packer.pack(1) + packer.pack(key) + packer.pack(2)
        return packer.pack_map_header(1) + packer.pack("msg") + body
    out = packer.pack_map_header(7)
    for k, v in {**HEAD, "msg": _msg()}.items():
        out += packer.pack(k) + packer.pack(v)
    return out + packer.pack(key) + packer.pack(HEAD.get(key, 1))


def test_repeated_key_refused() -> None:
    _check(_refused(codec.decode_envelope, _dup_frame("src")), M, "map key 'src' appears twice", "'src'")
    _check(_refused(codec.decode_header, _dup_frame("sseq")), M, "map key 'sseq' appears twice", "'sseq'")
    # also inside the message, and anywhere in protocol frames
    _check(_refused(codec.unpack, _dup_frame("v", inner=True)), M, "map key 'v' appears twice", "'v'")
    long_key = "k" * 50
    err = _refused(codec.unpack, _dup_frame(long_key, inner=True))
    _check(err, M, f"map key {repr(long_key)[:32]} appears twice", repr(long_key)[:32])
    packer = msgpack.Packer(use_bin_type=True)
    raw = packer.pack_map_header(2) + packer.pack(b"k") + packer.pack(1) + packer.pack(b"k") + packer.pack(2)
    _check(_refused(codec.unpack, raw), M, "map key <1 bytes> appears twice", "<1 bytes>")


def test_distinct_keys_accepted() -> None:
    packer = msgpack.Packer()
    raw = packer.pack_map_header(3) + b"".join(packer.pack(k) + packer.pack(i) for i, k in enumerate("abc"))
    assert codec.unpack(raw) == {"a": 0, "b": 1, "c": 2}


# ---- depth ----------------------------------------------------------------------------------

def _lists(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _maps(keys: list[str]) -> dict:
    value: dict = {}
    for key in reversed(keys):
        value = {key: value}
    return value


def test_depth_limit_lists() -> None:
    assert codec.unpack(msgpack.packb(_lists(MAX_DEPTH))) == _lists(MAX_DEPTH)
    err = _refused(codec.unpack, msgpack.packb(_lists(MAX_DEPTH + 1)))
    _check(err, M, f"nested deeper than {MAX_DEPTH} levels", "0.0.0.0.0.0.0.0.…")
    assert MAX_DEPTH == 32


def test_depth_limit_maps_and_path() -> None:
    keys = [f"k{i}" for i in range(MAX_DEPTH)]
    assert codec.unpack(msgpack.packb(_maps(keys[:-1])))  # 32 maps: the innermost is empty
    err = _refused(codec.unpack, msgpack.packb(_maps(keys)))
    _check(err, M, f"nested deeper than {MAX_DEPTH} levels", "k0.k1.k2.k3.k4.k5.k6.k7.…")
    long = ["x" * 40 + str(i) for i in range(MAX_DEPTH)]
    err = _refused(codec.unpack, msgpack.packb(_maps(long)))
    assert err.field == ".".join(["x" * 32] * 8) + ".…"


def test_depth_limit_mixed_and_siblings() -> None:
    # a shallow sibling before the deep branch; the deep one is found wherever it is
    ok = {"a": [1, {"b": _lists(MAX_DEPTH - 3)}], "z": 1}
    assert codec.unpack(msgpack.packb(ok)) == ok
    deep = {"a": 1, "b": [0, 0, {"c": _lists(MAX_DEPTH - 2)}]}
    err = _refused(codec.unpack, msgpack.packb(deep))
    _check(err, M, f"nested deeper than {MAX_DEPTH} levels", "b.2.c.0.0.0.0.0.…")


def test_depth_limit_in_envelope() -> None:
    msg = {**_msg(), "pnl_today": _lists(MAX_DEPTH - 2)}   # envelope 1, msg 2, list 3..32
    frame = _frame(msg=msg)
    with pytest.raises(BusError) as info:
        codec.decode_envelope(frame)
    assert info.value.code is ErrorCode.INVALID_FIELD      # deep enough to unpack, refused by the model
    err = _refused(codec.decode_header, _frame(msg={**_msg(), "pnl_today": _lists(MAX_DEPTH - 1)}))
    _check(err, M, f"nested deeper than {MAX_DEPTH} levels", "msg.pnl_today.0.0.0.0.0.0.…")


def test_far_too_deep_is_a_stack_error() -> None:
    frame = b"\x91" * 5000 + b"\xc0"
    _check(_refused(codec.unpack, frame), M, f"nested deeper than {MAX_DEPTH} levels", None)


def test_scalars_unpack_without_depth_walk() -> None:
    assert codec.unpack(msgpack.packb(5)) == 5
    assert codec.unpack(msgpack.packb("s")) == "s"
    assert codec.unpack(msgpack.packb(None)) is None


# ---- short ----------------------------------------------------------------------------------

def test_short() -> None:
    assert codec.short("a" * 50) == repr("a" * 50)[:32]
    assert codec.short("a" * 50, 5) == "'aaaa"
    assert codec.short(12) == "12"
    assert codec.short(1.5) == "1.5"
    assert codec.short(True) == "True"
    assert codec.short(None) == "None"
    assert codec.short(b"abc") == "<3 bytes>"
    assert codec.short([1]) == "<list>"
    assert codec.short({"a": 1}) == "<dict>"
    assert codec.short(10 ** 40) == repr(10 ** 40)[:32]


# ---- envelope -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [[1], "x", 3, None])
def test_envelope_must_be_a_map(value) -> None:
    _check(_refused(codec.decode_header, msgpack.packb(value)), M, "envelope must be a map", None)


@pytest.mark.parametrize("key", ["src", "inc", "sseq", "oldest", "ts"])
def test_envelope_missing_key(key: str) -> None:
    err = _refused(codec.decode_envelope, _frame(**{key: _DROP}))
    _check(err, M, f"envelope has no {key!r}", key)


def test_envelope_missing_msg() -> None:
    _check(_refused(codec.decode_header, _frame(msg=_DROP)), M, "envelope has no 'msg'", "msg")
    _check(_refused(codec.decode_header, _frame(msg=_DROP, extra=1)), M, "envelope has no 'msg'", "msg")


def test_envelope_extra_key() -> None:
    keys = sorted(codec.ENVELOPE_KEYS)
    err = _refused(codec.decode_header, _frame(zz=1, aa=2))
    _check(err, M, f"envelope keys must be exactly {keys}; extra ['aa', 'zz']", "aa")
    err = _refused(codec.decode_envelope, _frame(**{"y" * 40: 1}))
    _check(err, M, f"envelope keys must be exactly {keys}; extra ['{'y' * 32}']", "y" * 32)
    assert {"src", "inc", "sseq", "oldest", "ts", "msg"} == codec.ENVELOPE_KEYS


SRC = "envelope 'src' must be a string of 1..128 chars"
INC = "envelope 'inc' must be an unsigned 64-bit integer"
SSEQ = "envelope 'sseq' must be a positive 64-bit integer"
OLDEST = "envelope 'oldest' must be an integer in 1..sseq"
TS = "envelope 'ts' must be a finite number"


@pytest.mark.parametrize(("over", "detail", "field"), [
    ({"src": ""}, SRC, "src"),
    ({"src": "x" * 129}, SRC, "src"),
    ({"src": b"me"}, SRC, "src"),
    ({"src": 1}, SRC, "src"),
    ({"src": None}, SRC, "src"),
    ({"inc": -1}, INC, "inc"),
    ({"inc": 1.0}, INC, "inc"),
    ({"inc": True}, INC, "inc"),
    ({"inc": "1"}, INC, "inc"),
    ({"sseq": 0}, SSEQ, "sseq"),
    ({"sseq": -1}, SSEQ, "sseq"),
    ({"sseq": 1.0}, SSEQ, "sseq"),
    ({"sseq": True}, SSEQ, "sseq"),
    ({"oldest": 0}, OLDEST, "oldest"),
    ({"oldest": -1}, OLDEST, "oldest"),
    ({"oldest": 2}, OLDEST, "oldest"),
    ({"sseq": 5, "oldest": 6}, OLDEST, "oldest"),
    ({"oldest": 1.0}, OLDEST, "oldest"),
    ({"oldest": True}, OLDEST, "oldest"),
    ({"ts": float("nan")}, TS, "ts"),
    ({"ts": float("inf")}, TS, "ts"),
    ({"ts": float("-inf")}, TS, "ts"),
    ({"ts": "1.5"}, TS, "ts"),
    ({"ts": True}, TS, "ts"),
    ({"ts": None}, TS, "ts"),
    # checked in order: the first bad field is named
    ({"src": "", "inc": -1}, SRC, "src"),
    ({"inc": -1, "sseq": 0}, INC, "inc"),
    ({"sseq": 0, "oldest": 0}, SSEQ, "sseq"),
    ({"oldest": 0, "ts": None}, OLDEST, "oldest"),
    ({"ts": None, "msg": _DROP}, TS, "ts"),
    ({"ts": None, "x": 1}, TS, "ts"),
])
def test_envelope_field_refused(over: dict, detail: str, field: str) -> None:
    for fn in (codec.decode_header, codec.decode_envelope):
        _check(_refused(fn, _frame(**over)), M, detail, field)


@pytest.mark.parametrize("over", [
    {"src": "x"}, {"src": "x" * 128}, {"src": "é" * 128},
    {"inc": 0}, {"inc": U64_MAX},
    {"sseq": 1, "oldest": 1}, {"sseq": U64_MAX, "oldest": U64_MAX}, {"sseq": U64_MAX, "oldest": 1},
    {"sseq": 9, "oldest": 8},
    {"ts": 0.0}, {"ts": 1}, {"ts": -1.0}, {"ts": 1e308},
])
def test_envelope_field_accepted_at_limits(over: dict) -> None:
    env = codec.decode_envelope(_frame(**over))
    want = {**HEAD, **over}
    assert (env.src, env.inc, env.sseq, env.oldest, env.ts) == (want["src"], want["inc"], want["sseq"],
                                                                   want["oldest"], float(want["ts"]))
    assert codec.MAX_ID_LEN == 128 and U64_MAX == 2 ** 64 - 1


# ---- message --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [[1], "kpis_v7", 1, None])
def test_message_must_be_a_map(value) -> None:
    _check(_refused(codec.decode_message, value), M, "message must be a map", "msg")
    _check(_refused(codec.decode_envelope, _frame(msg=value)), M, "message must be a map", "msg")


@pytest.mark.parametrize("tag", [_DROP, 1, None, b"kpis_v7"])
def test_message_type_must_be_a_string(tag) -> None:
    msg = {k: v for k, v in {**_msg(), "type": tag}.items() if v is not _DROP}
    _check(_refused(codec.decode_message, msg), M, "message has no string 'type'", "type")


def test_unknown_type() -> None:
    _check(_refused(codec.decode_message, {"type": "nope", "v": 2}), ErrorCode.UNKNOWN_TYPE,
           "unknown message type 'nope'", "type")
    long = "t" * 100
    _check(_refused(codec.decode_envelope, _frame(msg={"type": long, "v": 2})), ErrorCode.UNKNOWN_TYPE,
           f"unknown message type {'t' * 64!r}", "type")


@pytest.mark.parametrize(("version", "shown"), [(3, "3"), (1, "1"), (0, "0"), (_DROP, "None"), ("2", "'2'"),
                                                (2.0, "2.0"), (True, "True")])
def test_unsupported_version(version, shown: str) -> None:
    msg = {k: v for k, v in {**_msg(), "v": version}.items() if v is not _DROP}
    _check(_refused(codec.decode_message, msg), ErrorCode.UNSUPPORTED_VERSION,
           f"kpis_v7 v={shown} not supported (supported: 2)", "v")


def test_invalid_field_names_the_path() -> None:
    msg = _msg()
    msg["portfolio"]["nav"] = "lots"
    err = _refused(codec.decode_message, msg)
    assert (err.code, err.field) == (ErrorCode.INVALID_FIELD, "portfolio.nav")
    assert err.detail.startswith("kpis_v7: ")
    err = _refused(codec.decode_envelope, _frame(msg=msg))
    assert (err.code, err.field) == (ErrorCode.INVALID_FIELD, "portfolio.nav")


def test_invalid_field_at_root_has_no_field() -> None:
    wire = sample_ledger(1).to_wire()
    wire["unexpected_top_level"] = 1
    err = _refused(codec.decode_message, wire)
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.field == "unexpected_top_level"


def test_contract_breach() -> None:
    wire = sample_ledger(2).to_wire()
    wire["metadata"]["entry_count"] = 5
    err = _refused(codec.decode_message, wire)
    assert err.code is ErrorCode.CONTRACT_BREACH
    assert err.detail.startswith("positions_ledger: ")
    wire = positions(position()).to_wire()
    wire["positions"][0]["entry_price"] = 0.0
    err = _refused(codec.decode_envelope, _frame(msg=wire))
    assert err.code is ErrorCode.CONTRACT_BREACH


# ---- peek_sseq ------------------------------------------------------------------------------

def test_peek_sseq() -> None:
    assert codec.peek_sseq(_frame(sseq=7, oldest=1)) == 7
    assert codec.peek_sseq(_frame(sseq=1)) == 1
    assert codec.peek_sseq(_frame(sseq=U64_MAX, oldest=1)) == U64_MAX
    for bad in (0, -1, True, "5", 1.0, None):
        assert codec.peek_sseq(_frame(sseq=bad)) is None
    assert codec.peek_sseq(_frame(sseq=_DROP)) is None
    assert codec.peek_sseq(b"\xc1") is None
    assert codec.peek_sseq(msgpack.packb([1, 2])) is None
    assert codec.peek_sseq(msgpack.packb({1: "a", "sseq": 4})) == 4      # non-string keys tolerated
    assert codec.peek_sseq(_dup_frame("src")) == 1                       # repeated keys tolerated
    frame = _frame(sseq=3, oldest=1)
    assert codec.peek_sseq(frame, len(frame)) == 3
    assert codec.peek_sseq(frame, len(frame) - 1) is None


def test_peek_sseq_default_limit() -> None:
    overhead = len(msgpack.packb({"sseq": 3, "pad": b"x" * 70000}, use_bin_type=True)) - 70000

    def sized(n: int) -> bytes:
        frame = msgpack.packb({"sseq": 3, "pad": b"x" * (n - overhead)}, use_bin_type=True)
        assert len(frame) == n
        return frame

    assert codec.peek_sseq(sized(DEFAULT_MAX_FRAME_BYTES)) == 3
    assert codec.peek_sseq(sized(DEFAULT_MAX_FRAME_BYTES + 1)) is None


# ---- validators that raise something pydantic does not translate --------------------------

class _Raises:
    """A stand-in message model whose validator raises `exc` (registered for the test only)."""

    def __init__(self, exc: BaseException) -> None:
        self.__pydantic_validator__ = self
        self._exc = exc

    def validate_python(self, obj):
        raise self._exc


def test_validator_overflow_is_invalid_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.REGISTRY, "fake", {2: _Raises(OverflowError("o" * 300))})
    err = _refused(codec.decode_message, {"type": "fake", "v": 2})
    _check(err, ErrorCode.INVALID_FIELD, f"fake: validation failed (OverflowError: {'o' * 200})", None)
    monkeypatch.setitem(codec.REGISTRY, "fake", {2: _Raises(TypeError("short"))})
    err = _refused(codec.decode_envelope, _frame(msg={"type": "fake", "v": 2}))
    _check(err, ErrorCode.INVALID_FIELD, "fake: validation failed (TypeError: short)", None)


def test_validator_recursion_is_invalid_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.REGISTRY, "fake", {2: _Raises(RecursionError("deep"))})
    err = _refused(codec.decode_message, {"type": "fake", "v": 2})
    _check(err, ErrorCode.INVALID_FIELD, "fake: nested too deeply", None)


def test_supported_versions_listed_sorted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(codec.REGISTRY, "fake", {3: _Raises(TypeError()), 1: _Raises(TypeError())})
    err = _refused(codec.decode_message, {"type": "fake", "v": 2})
    _check(err, ErrorCode.UNSUPPORTED_VERSION, "fake v=2 not supported (supported: 1,3)", "v")
