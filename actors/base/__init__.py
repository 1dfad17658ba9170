"""What every actor process shares: the loop, heartbeats, metrics, logging, signals."""

from actors.base.actor import Actor

__all__ = ["Actor"]
