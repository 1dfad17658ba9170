"""What every test directory shares: metrics (`metrics`), message factories (`messages`)."""
