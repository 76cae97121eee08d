"""What handlers share, kept on the app: the settings, the project, the open store."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from nurture.leads import LeadRules
from nurture.project import Project
from nurture.settings import Settings
from nurture.store.db import Store

__all__ = ["Context", "Ctx", "Store", "context"]


@dataclass(frozen=True)
class Context:
    settings: Settings
    project: Project
    store: Store
    rules: LeadRules


def context(request: Request) -> Context:
    return request.app.state.context


Ctx = Annotated[Context, Depends(context)]
