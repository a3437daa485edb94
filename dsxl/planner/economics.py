"""What a fleet costs and earns: dollars per hour, per day and per million tokens, revenue and margin.

Scalars, arrays or formulas, like the model functions: the planner and the workbook's Planner sheet share them.
"""

from __future__ import annotations

from typing import Any


def cost_per_hour(gpus: Any, price_gpu_hour: Any) -> Any:
    return gpus * price_gpu_hour


def cost_per_day(cost_per_hour: Any) -> Any:
    return cost_per_hour * 24


def per_million(dollars_per_hour: Any, tokens_per_s: Any) -> Any:
    """Dollars per million tokens served at tokens_per_s for dollars_per_hour."""
    return dollars_per_hour / (tokens_per_s * 3600) * 1e6


def revenue_per_day(input_hit_per_day: Any, input_miss_per_day: Any, output_per_day: Any, price_input_hit: Any,
                    price_input_miss: Any, price_output: Any) -> Any:
    """Revenue from tokens per day at prices per million tokens."""
    return (input_hit_per_day * price_input_hit + input_miss_per_day * price_input_miss
            + output_per_day * price_output) / 1e6


def margin(revenue: Any, cost: Any) -> Any:
    """Cost-profit margin: revenue over cost, minus one."""
    return revenue / cost - 1
