"""The dashboard actor: a read-only web page fed by the bus (snapshot + live updates)."""
