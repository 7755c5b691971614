"""Engine 2's analysis agents: pure functions from one shared `Enrichment` to a decision."""
