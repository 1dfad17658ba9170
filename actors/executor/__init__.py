"""The executor: marks and positions from the exchange, strategy, risk vetoes, order intents,
and once per loop the positions, ledger, risk, factor and KPI documents."""
