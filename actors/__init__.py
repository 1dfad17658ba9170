"""One package per actor process. `actors.base` holds what they share (loop, heartbeat, metrics)."""
