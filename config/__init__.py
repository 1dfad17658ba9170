"""Runtime settings and the strategy/risk JSON, validated at start-up (see config/settings.py)."""
