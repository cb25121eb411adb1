"""Domain events auth tells other services about (through its outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UserRegistered:
    """An account was created (published as switchyard.auth.v1.UserRegistered)."""

    event_id: str
    user_id: str
    display_name: str
    occurred_at: datetime
