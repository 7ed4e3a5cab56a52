"""The old import path of the costs, kept for the ComfyUI nodes (``nodes/spend_guard.py``) and saved
scripts: every name is re-exported from where it now lives. New code imports from those modules:
:mod:`.rates` (combinations, the rate card, Kling's price table), :mod:`.pricing` (the estimates) and
:mod:`.guard` (the spend guard, the balance warning)."""
from __future__ import annotations

from .guard import (MAX_UNITS_ENV, MAX_UNITS_PER_DAY_ENV, SpendLimitExceeded, SpendLimits, balance_warning,
                    check_spend, guard_note, parse_limit, preflight, spend_refusal, spent_today, start_of_today)
from .pricing import (BALANCE_LINE, ESTIMATE_LINE, GUARD_LINE, UNKNOWN, CostEstimate, PromptEstimate, deduction_text,
                      estimate_cost, estimate_requests, is_cost_line)
from .rates import (ENDPOINT_NAMES, RATE_CARD_ENV, RATE_KEYS, Combination, Rate, RateCard, RateCardError,
                    combination_for, rate_card_from_env, request_combination)

__all__ = ["BALANCE_LINE", "Combination", "CostEstimate", "ENDPOINT_NAMES", "ESTIMATE_LINE", "GUARD_LINE",
           "MAX_UNITS_ENV", "MAX_UNITS_PER_DAY_ENV", "PromptEstimate", "RATE_CARD_ENV", "RATE_KEYS", "Rate", "RateCard",
           "RateCardError", "SpendLimitExceeded", "SpendLimits", "UNKNOWN", "balance_warning", "check_spend",
           "combination_for", "deduction_text", "estimate_cost", "estimate_requests", "guard_note", "is_cost_line",
           "parse_limit", "preflight", "rate_card_from_env", "request_combination", "spend_refusal", "spent_today",
           "start_of_today"]
