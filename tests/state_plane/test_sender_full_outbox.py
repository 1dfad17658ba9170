"""A sender whose outbox stays full against a real, busy hub: durable messages make room by
evicting telemetry, and that must never open a gap in the sseqs.

Before the fix, evicting telemetry that had not been sent yet left a hole every later frame
ran into ("out of order"); each answer rewound the sender and resent its whole outbox, so
senders that kept their outbox full drove the hub into a resend storm: three of them
(bench/scale's feeders, 30 000 messages) got 1.4 k msg/s and 1.4 M "out of order" answers;
after it, 19.8 k msg/s and none.
"""

from __future__ import annotations

from bus.messages import utc_now
from bus.sender import Sender
from tests.harness import instance
from tests.support.messages import heartbeat, position, positions

MESSAGES = 6000


def test_a_full_outbox_never_causes_out_of_order_answers(tmp_path) -> None:
    with instance(tmp_path) as inst:
        inst.start_writer()
        with Sender(inst.settings, "executor", outbox_max=200) as sender:
            started = utc_now()
            for i in range(MESSAGES):
                if i % 5 == 4:
                    sender.send(heartbeat("blaster", pid=1, started_at=started, loops=i))
                else:
                    sender.send(positions(position(realized=float(i))))
            assert sender.flush(120)
            stats = sender.stats
        durable = MESSAGES - MESSAGES // 5
        assert stats.acked + stats.duplicates >= durable
        assert (stats.out_of_order, stats.rewinds) == (0, 0), stats
