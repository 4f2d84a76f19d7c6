"""The one base class of every config section: unknown keys are errors (with a did-you-mean hint
from validate_config), and ``model_*`` field names are allowed (``model.name``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """Base of every ray-icma config section (training, pipeline)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
