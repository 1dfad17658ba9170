"""Exchange access: the adapter interface every exchange implements, and its implementations.

- `exchange.adapter`: the interface (marks/top of book, bars, balance, positions, orders, fills)
  and the models it speaks. A live ccxt adapter implements the same class.
- `exchange.paper`: the paper exchange (SIM mode), a seeded simulator with fees, partial fills
  and rejects. It runs inside the `exchange` actor process.
- `exchange.rpc` / `exchange.client`: the adapter interface over ZeroMQ, so every trading actor
  talks to the one paper exchange process through the same interface.
"""
