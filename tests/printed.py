"""Comparing computed values with the article's printed ones at its printed precision."""

import re

# Text cells of section 1.4 where the article truncated or multiplied already-rounded figures.
TEXT_TOLERANCE = 0.01  # relative: 1.84M exact vs 1.83M printed is the widest gap
KNOWN_TYPOS = {("block_costs", "Expert", 1): "88.1M"}  # the article prints 488.1M; its text says 88.1M


def printed_equal(got, printed, decimals: int) -> bool:
    """True when ``got`` prints as ``printed`` at ``decimals`` (half-ulp tolerance either side)."""
    return abs(float(got) - float(printed)) <= 0.5 * 10 ** -decimals + 1e-9


def text_equal(got: str, printed: str) -> bool:
    """'187.17M' vs '187.17M'; numbers in a text cell agree within TEXT_TOLERANCE, the rest exactly."""
    num = re.compile(r"\d+(?:\.\d+)?")
    gn, pn = num.findall(got), num.findall(printed.replace(" ", ""))
    shape = num.sub("#", printed.replace(" ", "")).replace("#(FP#)", "#B(FP#)")  # the article drops the B once
    if num.sub("#", got) != shape:
        return False
    return len(gn) == len(pn) and all(abs(float(a) - float(b)) <= TEXT_TOLERANCE * max(abs(float(b)), 1e-12)
                                      for a, b in zip(gn, pn))
