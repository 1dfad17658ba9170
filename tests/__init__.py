"""The v7 test suite."""

from bus.messages import Scope

# The scope of every group the tests start in paper mode (runtime.toml defaults).
SIM_SCOPE = Scope(mode="SIM", network="paper", account="paper")
