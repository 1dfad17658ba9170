"""Base classes shared by every bus message, and the bounded field types they are made of.

Every message is a frozen pydantic model whose `type` field is a one-value Literal: the wire
tag, declared once there (`TYPE` and `VERSION` are read off the `type` and `v` annotations).
Messages are of three kinds, one module each:

- commands (`commands.py`): imperative, asking an actor to act (`SubmitOrder`);
- events (`events.py`): past tense, reporting what happened (`OrderFilled`);
- documents (`documents.py`): the content of one state file each (`PositionsState`); a
  document's tag is its file's name (`STATE_KEY`), and the file is the message minus tags.

Class variables describe how the hub treats a message:

- `DURABLE`: the sender never drops it (fills, order intents, position changes). Telemetry
  (`DURABLE = False`) may be dropped by a full outbox, and is counted when it is.
- `PRODUCERS`: the programs that may send it; the hub NACKs anyone else (`unauthorized`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

from domain.vocabulary import (
    Mode,
    Network,
    Symbol,  # noqa: F401  (re-exported: message modules take every field type from here)
)

# The programs of a group, as they name themselves on the bus (`src`), and the operator's CLI.
PROGRAMS: Final = ("exchange", "executor", "router", "exit_scanner", "sync", "diagnostics", "dashboard")
CLI: Final = "cli"


def utc_now() -> datetime:
    return datetime.now(UTC)


_ZERO = timedelta(0)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC or value.utcoffset() == _ZERO:
        return value  # already UTC ("Z" parses to an offset-0 tzinfo): no new object needed
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-14:00 is a valid ISO time whose UTC form is in year 10000. pydantic
        # passes only ValueError through as a validation error: an OverflowError escaping here
        # took the state writer down (and every resend would again).
        raise PydanticCustomError("datetime_range", "time outside year 1..9999 once converted to UTC") from None


_LAX_TIME = TypeAdapter(datetime)


def _parse_time(value: Any) -> Any:
    """ISO 8601 text or Unix seconds/milliseconds (docs/bus_protocol.md section 2) to a datetime.

    Models are strict (a bool is not an int, bytes are not a str); times are the one field
    the wire writes as text, so they are parsed here and the strict check sees a datetime.
    """
    if type(value) in (str, int, float):
        return _LAX_TIME.validate_python(value)
    return value


# ISO 8601 on the wire and in files ("2025-01-01T00:00:00.123456Z"); a naive time is taken as UTC.
# Validation makes every value UTC, and pydantic's own serializer writes UTC as "...Z" (fast path);
# the hub journals and publishes that normalized form, never the sender's spelling.
UtcTime = Annotated[datetime, BeforeValidator(_parse_time), AfterValidator(_to_utc)]

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ShortText = Annotated[str, StringConstraints(max_length=2048)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# Quantities, prices and money are bounded far from float overflow: the positions store adds
# fills up and multiplies qty by price, and two fills of 1e308 made a position of qty inf whose
# view failed every open_positions snapshot, also after a restart (it was in the database).
# Products of two bounded values and sums of a billion of them stay finite.
MAX_AMOUNT = 1e15
Price = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)]
Quantity = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)]
PositivePrice = Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]
PositiveQuantity = Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]
Money = Annotated[float, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
NonNegativeMoney = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)]
PositiveMoney = Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]
# Every number on the bus has both bounds (a test walks the models): an unbounded one that
# feeds a threshold or a sum turned into inf downstream (a heartbeat interval of 1e308 made
# the diagnostics actor's threshold inf).
# Aggregates (a day's P&L, a trade's realized total, MAE/MFE) are sums of products of two
# amounts: bounded so far out that no reachable sum meets it, and still finite.
MAX_TOTAL = 1e100
Total = Annotated[float, Field(ge=-MAX_TOTAL, le=MAX_TOTAL)]
NonNegativeTotal = Annotated[float, Field(ge=0.0, le=MAX_TOTAL)]
MAX_COUNT = 2**53 - 1  # exact in a float64, so JSON readers in any language read it back
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Pid = Annotated[int, Field(ge=0, le=1 << 22)]  # Linux pid_max is at most 2^22
MAX_RATIO = 1e6
Ratio = Annotated[float, Field(ge=-MAX_RATIO, le=MAX_RATIO)]  # fractions of NAV, scores, bps, factor values
NonNegativeRatio = Annotated[float, Field(ge=0.0, le=MAX_RATIO)]
Seconds = Annotated[float, Field(ge=0.0, le=1e11)]
MAX_HEARTBEAT_INTERVAL_S = 3600.0  # durations and ages (a time in year 1 is 6.4e10 s old)


class Model(BaseModel):
    """Strict, immutable, finite: NaN and inf are invalid everywhere on the bus.

    Strict types: a bool is not a number, a float is not an int, bytes are not text, 0/1 are
    not booleans. A message the hub accepts is therefore exactly of the documented types, and
    that is what it journals and publishes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class Message(Model):
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 0
    KIND: ClassVar[str] = ""
    DURABLE: ClassVar[bool] = False
    STATE_KEY: ClassVar[str | None] = None
    PRODUCERS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        if "type" in fields:
            (cls.TYPE,) = get_args(fields["type"].annotation)
            (cls.VERSION,) = get_args(fields["v"].annotation)

    @model_validator(mode="before")
    @classmethod
    def _tags(cls, data: Any) -> Any:
        # Built in Python, a message names neither tag: its class is the tag. On the wire both
        # are required (the codec refuses a message without them before it gets here).
        if type(data) is dict and "type" not in data and cls.TYPE:
            return {"type": cls.TYPE, "v": cls.VERSION, **data}
        return data

    def to_wire(self) -> dict[str, Any]:
        """The message as plain msgpack-able data (with `type` and `v`)."""
        return self.model_dump(mode="json")

    def to_document(self) -> dict[str, Any]:
        """The state-file form: the message without its `type` and `v` tags."""
        return self.model_dump(mode="json", exclude={"type", "v"})


class Command(Message):
    """Asks one actor to act (imperative name). Every command is durable: it is journaled
    before anyone acts on it."""

    KIND = "command"
    DURABLE = True


class Event(Message):
    """Reports what happened (past-tense name)."""

    KIND = "event"


class Scope(Model):
    """What a state document describes: the trading mode, where orders go and the account."""

    mode: Mode
    network: Network = Field(description="paper in SIM and DRY_RUN; the venue network (testnet, demo, "
                                         "mainnet) in LIVE.")
    account: Identifier

    @model_validator(mode="after")
    def _paper_is_not_live(self) -> Scope:
        if (self.mode == "LIVE") == (self.network == "paper"):
            raise PydanticCustomError("contract_breach", "mode {mode} cannot trade on network {network}",
                                      {"mode": self.mode, "network": self.network})
        return self

    def label(self) -> str:
        return f"{self.mode}/{self.network}/{self.account}"


class Document(Message):
    """The whole content of one state file (`logs/state/<TYPE>.json`); replaces it. Every
    document names its scope, so a file read on its own says which money it describes."""

    KIND = "document"
    scope: Scope

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.STATE_KEY = cls.TYPE
