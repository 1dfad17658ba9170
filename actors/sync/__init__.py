"""The sync actor: NAV/AUM sampling, peak NAV and drawdown with the NAV anomaly guard (seed 001),
and a read-only mirror of the state documents for remote dashboards, fed from the bus."""
