"""WhatsApp's 24-hour rule: free text reaches a lead only within 24 hours of their last message.

Outside that window WhatsApp delivers only approved templates, so a step falls back to its
template, or fails permanently saying why (retrying would not open the window).
"""

from datetime import datetime, timedelta
from typing import Any

from nurture.channels.protocol import PermanentFailure

WINDOW = timedelta(hours=24)


def in_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether the lead wrote to us within the last 24 hours."""
    return last_inbound_at is not None and now - last_inbound_at < WINDOW


def choose(
    text: str | None,
    template: dict[str, Any] | None,
    last_inbound_at: datetime | None,
    now: datetime,
) -> tuple[str, dict[str, Any] | None]:
    """(body, template) to send: free text inside the window, else the template (and no body:
    the free text does not go, so nothing shows or stores it as sent)."""
    if text and in_window(last_inbound_at, now):
        return text, None
    if template is not None:
        return "", template
    last = (
        f"last message {last_inbound_at:%Y-%m-%d %H:%M} UTC" if last_inbound_at else "never wrote"
    )
    raise PermanentFailure(
        f"WhatsApp free text outside the 24-hour window (the lead {last}) "
        "and the step has no template fallback"
    )
