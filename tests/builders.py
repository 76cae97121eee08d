"""Write sequence files into a temp project from dicts, as a user would write them."""

from pathlib import Path
from typing import Any

import yaml


def step(name: str, action: str = "send_sms", **fields: Any) -> dict[str, Any]:
    configs = {
        "send_sms": {"message": f"Hi {{{{ lead.first_name }}}}, {name}"},
        "send_email": {"subject": name, "body": "Hello {{ lead.name }}"},
        "wait": {},
        "add_lead_tag": {"tags": ["nurtured"]},
        "update_lead_score": {"add": 5},
        "create_task": {"title": "Call {{ lead.name }}"},
        "schedule_appointment": {"title": "Check-in"},
    }
    return {"name": name, "action_type": action, "action_config": configs[action], **fields}


def sequence(name: str, *steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "category": "custom", **fields, "steps": list(steps) or [step("Hello")]}


def write(project: Path, filename: str, doc: dict[str, Any] | str) -> Path:
    path = project / "sequences" / filename
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


SEED_WARM_LEAD = """\
name: Warm Lead Welcome
description: 5-step sequence for warm leads
category: warm_lead
triggerConditions:
  leadScore: {min: 30, max: 70}
  leadSource: [Web Form, Lead Magnet]
  leadStatus: [New, Contacted]
  leadTemperature: [Warm, Hot]
steps:
  - stepNumber: 1
    name: Welcome Message
    actionType: send_whatsapp_message
    actionConfig:
      message: "Hi {{lead.name}}! Welcome to our fitness program!"
    delayDays: 0
    delayHours: 0
"""
