"""The promotion gate: evaluate measures, and this decides.

The candidate is promoted only if, against the baseline (the model in use), it is worse by no
more than a stated margin on every metric, and, where the promotion claims "same network" (a
mirror of the baseline's model), its maps agree with the baseline's.  The thresholds are
config (``u2netp.evaluate.gate`` in defaults.yaml, which says why these numbers); the verdict,
each rule with its numbers, goes into evaluation.json and .md, and into the exit status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mirror.settings import is_on, shipped_defaults

METRICS = ("mae", "s_measure", "max_f", "mean_e", "weighted_f")
LOWER_IS_BETTER = frozenset({"mae"})


@dataclass(frozen=True)
class Gate:
    # metric -> how much worse than the baseline's the candidate's may be (MAE higher, the rest lower).
    margins: Mapping[str, float]
    # The candidate claims to be the baseline's network: its maps must agree with the baseline's.
    same_network: bool
    max_abs_diff: float
    mask_disagreement: float

    @classmethod
    def from_config(cls, gate: Mapping[str, Any]) -> Gate:
        return cls(
            margins={name: float(gate[name]) for name in METRICS},
            same_network=is_on(gate["same_network"]),
            max_abs_diff=float(gate["max_abs_diff"]),
            mask_disagreement=float(gate["mask_disagreement"]),
        )

    @classmethod
    def shipped(cls) -> Gate:
        return cls.from_config(shipped_defaults()["u2netp"]["evaluate"]["gate"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "margins": dict(self.margins),
            "same_network": self.same_network,
            "max_abs_diff": self.max_abs_diff,
            "mask_disagreement": self.mask_disagreement,
        }


@dataclass
class _Rules:
    rules: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rule: str, candidate: float, reference: float, limit: float, passed: bool) -> None:
        self.rules.append(
            {"rule": rule, "candidate": candidate, "reference": reference, "limit": limit, "passed": bool(passed)}
        )


def judge(result: Mapping[str, Any], gate: Gate) -> dict[str, Any]:
    """The verdict on an evaluation's ``result``: promoted or not, and every rule with its numbers."""
    checked = _Rules()
    metrics, agreement = result["metrics"], result["agreement"]
    if result["inputs"]["baseline"] is None and metrics is None:
        return _verdict(gate, checked, "nothing was measured: no image had a mask, and there is no --baseline")
    if result["inputs"]["baseline"] is None:
        return _verdict(
            gate, checked, "no baseline: the gate compares the candidate with the model in use (--baseline)"
        )
    if metrics is None and not gate.same_network:
        return _verdict(gate, checked, "no image had a mask and the gate claims no same network: nothing was measured")
    for name in METRICS if metrics is not None else ():
        candidate, baseline = metrics["candidate"][name], metrics["baseline"][name]
        worse = candidate - baseline if name in LOWER_IS_BETTER else baseline - candidate
        margin = gate.margins[name]
        direction = "higher" if name in LOWER_IS_BETTER else "lower"
        checked.add(
            f"{name} at most {margin:g} {direction} than the baseline's", candidate, baseline, margin, worse <= margin
        )
    if gate.same_network:
        checked.add(
            f"same network: largest |candidate - baseline| at most {gate.max_abs_diff:g}",
            agreement["max_abs_diff"],
            0.0,
            gate.max_abs_diff,
            agreement["max_abs_diff"] <= gate.max_abs_diff,
        )
        checked.add(
            f"same network: masks differ on at most {gate.mask_disagreement:g} of the pixels",
            agreement["mask_disagreement"],
            0.0,
            gate.mask_disagreement,
            agreement["mask_disagreement"] <= gate.mask_disagreement,
        )
    failed = [rule for rule in checked.rules if not rule["passed"]]
    if not failed:
        return _verdict(gate, checked, None)
    first = failed[0]
    more = f" (and {len(failed) - 1} more rules)" if len(failed) > 1 else ""
    why = f"{first['rule']}: candidate {first['candidate']:.4g}, baseline {first['reference']:.4g}{more}"
    return _verdict(gate, checked, why)


def _verdict(gate: Gate, checked: _Rules, failure: str | None) -> dict[str, Any]:
    return {
        "promoted": failure is None,
        "summary": "promoted: every rule holds" if failure is None else f"not promoted: {failure}",
        "rules": checked.rules,
        "gate": gate.as_dict(),
    }
