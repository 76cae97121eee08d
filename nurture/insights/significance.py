"""The statistics of an experiment: intervals, the test of a difference, and a plain verdict.

- a conversion rate's 95% interval: Wilson's score interval (scipy's `binomtest`);
- a difference to the control's 95% interval: Newcombe's hybrid score interval (his method 10,
  built from the two Wilson intervals; Newcombe 1998, Statistics in Medicine 17:873-890);
- its p-value: the two-proportion z-test (pooled), or Fisher's exact test when any expected
  cell of the 2x2 table is under 5 (scipy's `norm`, `fisher_exact`);
- a verdict that names no winner before every variant has `min_sample` leads, and compares
  each variant with the control at 0.05 split between the comparisons (Bonferroni).
"""

from dataclasses import dataclass
from math import sqrt

from scipy.stats import binomtest, fisher_exact, norm

from nurture.insights.units import p_text

LEVEL = 0.95
ALPHA = 0.05
SMALL_CELL = 5
Z_TEST = "two-proportion z-test"
FISHER = "Fisher's exact test"


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """The 95% Wilson interval of a rate; None without trials."""
    if trials == 0:
        return None
    interval = binomtest(successes, trials).proportion_ci(confidence_level=LEVEL, method="wilson")
    return float(interval.low), float(interval.high)


def newcombe(control: tuple[int, int], variant: tuple[int, int]) -> tuple[float, float] | None:
    """The 95% interval of `variant`'s rate minus `control`'s, each (successes, trials)."""
    first, second = wilson(*control), wilson(*variant)
    if first is None or second is None:
        return None
    p1, p2 = control[0] / control[1], variant[0] / variant[1]
    (l1, u1), (l2, u2) = first, second
    difference = p2 - p1
    low = difference - sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = difference + sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return low, high


@dataclass(frozen=True)
class Test:
    """A test of two rates: its name and two-sided p-value."""

    name: str
    p_value: float


def compare(control: tuple[int, int], variant: tuple[int, int]) -> Test | None:
    """The two-sided test of two rates, each (successes, trials); None without leads in both."""
    (k1, n1), (k2, n2) = control, variant
    if n1 == 0 or n2 == 0:
        return None
    table = [[k1, n1 - k1], [k2, n2 - k2]]
    total, converted = n1 + n2, k1 + k2
    expected = [n * c / total for n in (n1, n2) for c in (converted, total - converted)]
    if min(expected) < SMALL_CELL:
        return Test(FISHER, float(fisher_exact(table, alternative="two-sided").pvalue))
    pooled = converted / total
    error = sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (k2 / n2 - k1 / n1) / error
    return Test(Z_TEST, float(2 * norm.sf(abs(z))))


@dataclass(frozen=True)
class Arm:
    """One variant's leads and conversions."""

    id: str
    leads: int
    conversions: int

    @property
    def counts(self) -> tuple[int, int]:
        return self.conversions, self.leads

    @property
    def rate(self) -> float | None:
        return self.conversions / self.leads if self.leads else None


def verdict(arms: list[Arm], tests: dict[str, Test | None], min_sample: int) -> str:
    """What the figures allow one to say, plainly; the first arm is the control."""
    smallest = min(arms, key=lambda arm: arm.leads)
    if smallest.leads < min_sample:
        return (
            f"no winner yet: {smallest.leads:,} of {min_sample:,} leads per variant needed"
            f" ({smallest.id} has the fewest)"
        )
    alpha = ALPHA / max(len(arms) - 1, 1)
    control = arms[0]
    found = [
        (arm, test)
        for arm in arms[1:]
        if (test := tests.get(arm.id)) is not None and test.p_value < alpha
    ]
    if not found:
        return f"no difference found: every p-value is {alpha:g} or more"
    arm, test = min(found, key=lambda pair: pair[1].p_value)
    if (arm.rate or 0) > (control.rate or 0):
        return f"{arm.id} is better than {control.id} (p={p_text(test.p_value)})"
    return f"{control.id} (the control) is better than {arm.id} (p={p_text(test.p_value)})"
