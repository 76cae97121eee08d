"""What handlers share, kept on the app: the settings, the project, the open store."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from nurture.leads.records import LeadRules
from nurture.project.layout import Project
from nurture.settings import Settings
from nurture.store.db import Store

__all__ = ["Context", "Ctx", "Store", "context"]


@dataclass
class Context:
    settings: Settings
    project: Project
    store: Store
    rules: LeadRules
    tokens: Any = None
    """nurture.api.auth.Tokens, set by the app (auth imports this module)."""


async def context(request: Request) -> Context:
    return request.app.state.context


Ctx = Annotated[Context, Depends(context)]
