"""Costs: what a task costs before it is sent (rates: the rate card and Kling's price table; pricing: the
estimates, with the account's own ledger), the spend guard and the balance warning (guard)."""
