"""The state writer: the only code that writes `logs/state/*` and the positions database.

decode -> validate -> de-duplicate -> seq -> journal (group commit, fsync) -> apply
(memory + store) -> ACK -> publish; state files written atomically, coalesced per tick.
"""
