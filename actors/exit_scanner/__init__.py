"""The exit scanner: TP/SL registry per open position, exit triggers (TP, SL, TTL), coverage."""
