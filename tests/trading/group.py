"""A whole trading group in an isolated instance, sped up, and what its journal says.

Market time runs fast (1 s bars of 5 market minutes), loops are short and positions live at
most 8 s, so a position opens and closes by TP/SL/TTL within seconds. The journal is never
compacted here, so it holds every committed message for the checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from actors.state_writer.journal import Journal
from bus import codec
from bus.codec import Envelope
from bus.messages import Message
from config.settings import REPO_CONFIG_DIR
from tests.harness import Instance

TRADING_ACTORS = ("exchange", "executor", "router", "exit_scanner", "sync")
STARTING_BALANCE = 10_000.0

FAST_TOML = """
[loop_s]
exchange = 0.05
executor = 0.25
router = 0.1
exit_scanner = 0.15
sync = 0.25

[paper]
tick_s = 0.05
bar_s = 1.0
time_scale = 300.0
warmup_bars = 120
touch_fill_rate_per_s = 2.0
reject_prob = 0.02

[writer]
snapshot_every_s = 3600
snapshot_every_messages = 10000000
"""


def configure_fast(inst: Instance) -> None:
    strategy = json.loads((REPO_CONFIG_DIR / "strategy_config.json").read_text())
    strategy["signal"]["entry_threshold"] = 0.25  # more signals: a quick test sees many trades
    strategy["entry"].update({"ttl_s": 8, "intent_expiry_s": 6})
    strategy["router"].update({"reprice_after_s": 0.4, "twap_interval_s": 0.2, "state_every_s": 0.5})
    strategy["exits"].update({"retrigger_after_s": 1.0})
    risk = json.loads((REPO_CONFIG_DIR / "risk_limits.json").read_text())
    risk["stale_nav_s"] = 5
    for name, doc in (("strategy_config", strategy), ("risk_limits", risk)):
        (inst.home / f"{name}.json").write_text(json.dumps(doc, indent=2))
    inst.write_config(
        f'strategy_config = "{inst.home / "strategy_config.json"}"\n'
        f'risk_limits = "{inst.home / "risk_limits.json"}"\n' + FAST_TOML
    )


def start_group(inst: Instance) -> None:
    inst.start_writer()
    for actor in TRADING_ACTORS:
        inst.start(actor)


@dataclass(frozen=True)
class Committed:
    seq: int
    env: Envelope

    @property
    def msg(self) -> Message:
        return self.env.msg


def committed(inst: Instance) -> list[Committed]:
    """Every record in the journal, in seq order (read-only; the writer may be appending)."""
    journal = Journal(Path(inst.settings.journal_path))
    return [Committed(r.seq, codec.decode_envelope(r.payload, max_bytes=1 << 30)) for r in journal.records()]


def of_type(records: list[Committed], kind: str) -> list[Committed]:
    return [r for r in records if kind == r.msg.TYPE]
