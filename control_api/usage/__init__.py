"""Pricing, usage records, usage triggers, balances and billing events."""
