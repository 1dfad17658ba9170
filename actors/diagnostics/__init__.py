"""The diagnostics actor: veto counters, exit pipeline status, liveness (seed 004), process liveness."""
