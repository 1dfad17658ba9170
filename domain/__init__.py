"""The domain kernel: the trading vocabulary and position arithmetic, used by every layer above.

Nothing here imports from the rest of the tree: `bus/`, `exchange/` and the actors all build on it.
"""
