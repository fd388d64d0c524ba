"""The gate: the one decision per record of the orders topic, before the sink or the Catalog writes."""
