"""The order of risk levels, defined once from the lock's `Risk` literal (low < medium < high)."""

from __future__ import annotations

from typing import get_args

from obsplan.lock.lockfile import Risk

RISK_RANK: dict[str, int] = {level: i for i, level in enumerate(get_args(Risk))}


def riskier(a: str, b: str) -> bool:
    """Whether risk level `a` is higher than `b`."""
    return RISK_RANK[a] > RISK_RANK[b]
