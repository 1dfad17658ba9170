"""A Binance USDⓈ-M futures compatible server for tests (documentation to follow)."""

from .config import KeySpec, SymbolSpec, VenueConfig
from .faults import FaultKind
from .server import BinanceFake

__all__ = ["BinanceFake", "FaultKind", "KeySpec", "SymbolSpec", "VenueConfig"]
