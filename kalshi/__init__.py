"""Everything that speaks Kalshi's Trade API wire protocol."""
