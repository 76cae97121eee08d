"""How a figure reads: a rate as a percentage, seconds in their two largest units (stats, the
report). No store here, so `nurture stats --help` loads none."""

from datetime import timedelta

from nurture.spec.durations import format_duration


def percent(value: float | None) -> str:
    """A rate as `41.7%`; `-` when there is nothing to divide."""
    return "-" if value is None else f"{value * 100:.1f}%"


def duration(value: float | None) -> str:
    """Seconds as their two largest units (`1d 4h`, `12m 5s`); `-` when there are none."""
    if value is None:
        return "-"
    return " ".join(format_duration(timedelta(seconds=round(value))).split()[:2])


def p_text(p_value: float) -> str:
    """A p-value as people read it: 0.003, 0.41, <0.001."""
    if p_value < 0.001:
        return "<0.001"
    shown = f"{p_value:.3f}"
    return shown[:-1] if shown.endswith("0") else shown
