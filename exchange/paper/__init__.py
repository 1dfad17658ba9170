"""The paper exchange (SIM mode): a seeded market simulator and an order-matching engine.

`market.MarketSimulator` moves the mids and builds bars; `engine.PaperExchange` implements the
adapter interface on top of it (fees, partial fills, rejects, linear positions) and persists
everything through `store.PaperStore`, so a restarted exchange process resumes where it stopped.
"""
