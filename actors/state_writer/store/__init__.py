"""The positions store (seed 003): open positions, closed trades and their audit trail, in a database.

Owned by the state writer and written only inside its commit path (`store.PositionStore`).
docs/positions_store.md describes the schema, write-through, views, recovery and reconciliation.
"""

from actors.state_writer.store.schema import SCHEMA_VERSION, StoreError, StoreSchemaError
from actors.state_writer.store.store import PositionStore, StoreFailed

__all__ = ["SCHEMA_VERSION", "PositionStore", "StoreError", "StoreFailed", "StoreSchemaError"]
