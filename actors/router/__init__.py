"""The router: executes order intents and exit triggers from the bus, maker-first with TWAP."""
