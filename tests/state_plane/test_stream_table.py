"""The stream table and the de-duplication verdicts (actors/state_writer/state.py), in process.

StreamView (one batch's view: admit, accepted, refused, commit), WriterState.duplicate_of, the
bounded least-recently-active table and its dump/load. Exact tuples and Stream rows, so the mutation
run (tools/mutation.py streams) can afford them per mutant.
"""

from __future__ import annotations

from actors.state_writer.state import Stream, StreamView, Verdict, WriterState
from tests.support.messages import heartbeat, kpis

NEW, DUP, OOO = Verdict.NEW, Verdict.DUPLICATE, Verdict.OUT_OF_ORDER


def table(*rows: tuple[str, int, Stream], bound: int = 4096) -> WriterState:
    state = WriterState(bound)
    for src, inc, stream in rows:
        state.streams[(src, inc)] = stream
    return state


def commit(state: WriterState, src: str, inc: int, sseq: int, seq: int) -> None:
    state.apply_message(seq, src, inc, sseq, heartbeat(src))


def streams(state: WriterState) -> list[tuple[tuple[str, int], Stream]]:
    return list(state.streams.items())


# ---- StreamView.admit ---------------------------------------------------------------------------

def test_admit_against_the_table() -> None:
    # answered (7) past max_sseq (5): 6 and 7 were refused, so 8 is the next in order.
    view = StreamView(table(("s", 1, Stream(5, 20, 7))))
    assert view.admit("s", 1, 5, 5) == (DUP, 20, False)
    assert view.admit("s", 1, 4, 1) == (DUP, 0, False)
    assert view.admit("s", 1, 1, 1) == (DUP, 0, False)
    assert view.admit("s", 1, 6, 1) == (NEW, 0, False)
    assert view.admit("s", 1, 8, 1) == (NEW, 0, False)
    assert view.admit("s", 1, 9, 1) == (OOO, 8, False)
    assert view.admit("s", 1, 9, 8) == (OOO, 8, False)
    assert view.admit("s", 1, 9, 9) == (NEW, 0, False)
    # Another incarnation of the same sender is another stream, which starts at 1.
    assert view.admit("s", 2, 1, 1) == (NEW, 0, False)
    assert view.admit("s", 2, 2, 1) == (OOO, 1, False)
    assert view.admit("s", 2, 2, 2) == (NEW, 0, False)
    assert view.admit("t", 1, 3, 1) == (OOO, 1, False)


def test_admit_sees_what_the_batch_accepted_before_the_table_does() -> None:
    state = table(("s", 1, Stream(5, 20, 7)))
    view = StreamView(state)
    view.accepted("s", 1, 6, 21)
    view.accepted("n", 1, 1, 22)
    assert view.admit("s", 1, 6, 6) == (DUP, 21, True)  # this batch's: answered once it is durable
    assert view.admit("s", 1, 5, 5) == (DUP, 0, False)  # the table's: answered now
    assert view.admit("s", 1, 8, 1) == (NEW, 0, False)  # accepting 6 kept answered at 7
    assert view.admit("s", 1, 9, 1) == (OOO, 8, False)
    assert view.admit("n", 1, 1, 1) == (DUP, 22, True)
    assert view.admit("n", 1, 2, 1) == (NEW, 0, False)
    assert view.admit("n", 1, 3, 1) == (OOO, 2, False)
    view.accepted("n", 1, 2, 23)
    assert view.admit("n", 1, 1, 1) == (DUP, 0, True)
    assert view.admit("n", 1, 2, 1) == (DUP, 23, True)
    # Nothing reaches the table before the commit.
    assert streams(state) == [(("s", 1), Stream(5, 20, 7))]


def test_accepting_past_answered_moves_answered() -> None:
    view = StreamView(table(("s", 1, Stream(5, 20, 5))))
    view.accepted("s", 1, 9, 30)  # oldest == sseq skipped 6..8
    assert view.admit("s", 1, 10, 1) == (NEW, 0, False)
    assert view.admit("s", 1, 11, 1) == (OOO, 10, False)
    assert view.admit("s", 1, 7, 7) == (DUP, 0, True)


# ---- StreamView.refused -------------------------------------------------------------------------

def test_a_refusal_marks_the_next_sseq_of_a_known_stream_answered() -> None:
    state = table(("s", 1, Stream(5, 20, 7)))
    view = StreamView(state)
    view.refused("s", 1, 10)  # not the next one: a gap stays a gap
    assert view.admit("s", 1, 9, 1) == (OOO, 8, False)
    view.refused("s", 1, 8)
    assert view.admit("s", 1, 9, 1) == (NEW, 0, False)
    assert view.admit("s", 1, 10, 1) == (OOO, 9, False)
    view.refused("s", 1, 9)
    assert view.admit("s", 1, 10, 1) == (NEW, 0, False)
    # The committed max and its seq are kept; the mark is not in batch for the table's own sseqs.
    assert view.admit("s", 1, 5, 5) == (DUP, 20, False)
    assert view.admit("s", 1, 4, 4) == (DUP, 0, False)
    assert streams(state) == [(("s", 1), Stream(5, 20, 7))]
    view.commit()
    assert streams(state) == [(("s", 1), Stream(5, 20, 9))]


def test_a_refusal_in_an_unknown_stream_is_not_tracked() -> None:
    state = WriterState()
    view = StreamView(state)
    view.refused("n", 1, 1)
    assert view.admit("n", 1, 2, 1) == (OOO, 1, False)
    view.commit()
    assert streams(state) == []


def test_a_refusal_after_an_accept_in_the_same_batch() -> None:
    view = StreamView(WriterState())
    view.accepted("n", 1, 1, 40)
    view.refused("n", 1, 2)
    assert view.admit("n", 1, 3, 1) == (NEW, 0, False)
    assert view.admit("n", 1, 1, 1) == (DUP, 40, True)


# ---- StreamView.commit ----------------------------------------------------------------------------

def test_commit_raises_answered_of_known_streams_only() -> None:
    state = table(("s", 1, Stream(5, 20, 5)), ("t", 1, Stream(2, 21, 2)))
    view = StreamView(state)
    view.refused("s", 1, 6)
    view.accepted("t", 1, 3, 22)
    view.accepted("n", 1, 1, 23)  # a new stream enters the table when its message is applied
    commit(state, "t", 1, 3, 22)
    view.commit()
    assert streams(state) == [(("s", 1), Stream(5, 20, 6)), (("t", 1), Stream(3, 22, 3))]


def test_commit_never_lowers_answered() -> None:
    state = table(("s", 1, Stream(5, 20, 5)))
    view = StreamView(state)
    view.refused("s", 1, 6)
    commit(state, "s", 1, 9, 25)  # the stream moved on past the view's mark
    view.commit()
    assert streams(state) == [(("s", 1), Stream(9, 25, 9))]


def test_a_view_never_committed_leaves_the_table_as_it_was() -> None:
    state = table(("s", 1, Stream(5, 20, 5)))
    view = StreamView(state)
    view.refused("s", 1, 6)
    view.accepted("s", 1, 7, 21)
    assert streams(state) == [(("s", 1), Stream(5, 20, 5))]
    assert StreamView(state).admit("s", 1, 7, 1) == (OOO, 6, False)


# ---- WriterState: duplicate_of and the bounded table ------------------------------------------------

def test_duplicate_of() -> None:
    state = WriterState()
    commit(state, "s", 1, 5, 20)
    assert state.duplicate_of("s", 1, 5) == 20
    assert state.duplicate_of("s", 1, 4) == 0
    assert state.duplicate_of("s", 1, 6) is None
    assert state.duplicate_of("s", 2, 1) is None
    assert state.duplicate_of("t", 1, 5) is None


def test_recording_a_stream() -> None:
    state = WriterState()
    commit(state, "s", 1, 5, 20)
    assert (state.seq, streams(state)) == (20, [(("s", 1), Stream(5, 20, 5))])
    commit(state, "s", 1, 7, 21)
    assert streams(state) == [(("s", 1), Stream(7, 21, 7))]
    # A replayed older record (a journal before its snapshot) moves nothing back.
    state.apply(22, "s", 1, 6, heartbeat("s").to_wire(), None)
    assert (state.seq, streams(state)) == (22, [(("s", 1), Stream(7, 21, 7))])
    commit(state, "s", 1, 7, 23)
    assert streams(state) == [(("s", 1), Stream(7, 21, 7))]
    # answered past the new max (refusals committed by a view) stays.
    state.streams[("s", 1)].answered = 12
    commit(state, "s", 1, 9, 24)
    assert streams(state) == [(("s", 1), Stream(9, 24, 12))]
    commit(state, "s", 1, 14, 25)
    assert streams(state) == [(("s", 1), Stream(14, 25, 14))]


def test_the_table_keeps_the_most_recently_active_streams() -> None:
    state = WriterState(dedup_streams_max=3)
    for i, src in enumerate(["a", "b", "c"], start=1):
        commit(state, src, 1, 1, i)
    assert [k for k, _s in streams(state)] == [("a", 1), ("b", 1), ("c", 1)]  # at the bound: nothing evicted
    commit(state, "a", 1, 1, 4)  # a duplicate's record still counts as activity
    commit(state, "d", 1, 1, 5)
    assert [k for k, _s in streams(state)] == [("c", 1), ("a", 1), ("d", 1)]
    commit(state, "c", 1, 2, 6)
    commit(state, "e", 7, 1, 7)
    assert [k for k, _s in streams(state)] == [("d", 1), ("c", 1), ("e", 7)]
    assert state.duplicate_of("a", 1, 1) is None  # evicted: judged new again


def test_the_default_bound() -> None:
    assert WriterState().dedup_streams_max == 4096
    assert WriterState.load({"seq": 0}).dedup_streams_max == 4096
    assert WriterState.load({"seq": 0}, 7).dedup_streams_max == 7


# ---- dump and load of the table ---------------------------------------------------------------------

def test_the_table_survives_dump_and_load() -> None:
    state = WriterState()
    commit(state, "s", 1, 5, 20)
    commit(state, "t", 2, 3, 21)
    commit(state, "s", 1, 6, 22)
    state.streams[("t", 2)].answered = 9  # memory only: a restart starts answered at max_sseq
    dumped = state.dump()
    assert dumped["streams"] == [["t", 2, 3, 21], ["s", 1, 6, 22]]
    loaded = WriterState.load(dumped, dedup_streams_max=2)
    assert streams(loaded) == [(("t", 2), Stream(3, 21, 3)), (("s", 1), Stream(6, 22, 6))]
    assert (loaded.seq, loaded.dedup_streams_max) == (22, 2)
    commit(loaded, "u", 1, 1, 23)
    assert [k for k, _s in streams(loaded)] == [("s", 1), ("u", 1)]
    assert WriterState.load({"seq": 3, "streams": None}).streams == {}
    assert WriterState.load({"seq": 3}).streams == {}


def test_a_kpis_document_commit_moves_its_stream_too() -> None:
    state = WriterState()
    state.apply_message(4, "executor", 3, 2, kpis())
    assert streams(state) == [(("executor", 3), Stream(2, 4, 2))]
