"""tests/live: the fake venue's fixtures (and its loopback-only resolver guard for this process)."""

from tests.venue.conftest import creds, fake, loopback_only, venue_config

__all__ = ["creds", "fake", "loopback_only", "venue_config"]
