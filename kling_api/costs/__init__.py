"""Costs: rate cards, estimates before a run, the spend guard and the balance warning."""
