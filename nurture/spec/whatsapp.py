"""What `nurture validate` says about WhatsApp's 24-hour rule.

Free text reaches a lead only within 24 hours of their last message; a free-text step
without a template fallback fails for every lead who has not written lately.
"""

from nurture.spec.actions import WhatsAppConfig
from nurture.spec.diagnostics import Diagnostic
from nurture.spec.models import SequenceSpec
from nurture.spec.positions import Document

WARNING = (
    "free-text WhatsApp step without a template fallback: WhatsApp delivers free text only "
    "within 24 hours of the lead's last message (add `template: {content_sid: HX..., "
    "variables: {...}}` for the others) [whatsapp-window]"
)
"""Ends with its rule name, as the other lint warnings of `nurture validate` do."""


def window_warnings(spec: SequenceSpec, document: Document, filename: str) -> list[Diagnostic]:
    """A warning at each free-text WhatsApp step that has no template to fall back on."""
    found = []
    for index, step in enumerate(spec.steps):
        config = step.action_config
        if isinstance(config, WhatsAppConfig) and config.template is None:
            loc = ("steps", index, "action_config", "message")
            line, column = document.position(loc)
            path = document.resolve(loc)
            found.append(Diagnostic(filename, line, column, WARNING, "warning", path))
    return found
