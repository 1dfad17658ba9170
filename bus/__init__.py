"""The v7 bus: typed messages, the msgpack codec, and the clients actors use to talk to the hub.

Low level, no actor code: `messages` (pydantic models), `codec` (bytes <-> models),
`protocol` (frames and reply codes), `sender` (durable DEALER with outbox),
`subscriber` (snapshot + updates, Clone pattern), `state_reader` (read-only file loaders).
"""
