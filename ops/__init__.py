"""Operator tools: commands run by hand against a running ordersync stack."""
