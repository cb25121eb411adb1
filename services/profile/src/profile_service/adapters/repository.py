"""The one place with the profile service's SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from profile_service.adapters.tables import profiles
from profile_service.domain.model import Profile
from profile_service.service_layer.ports import DuplicateProfile


def _to_profile(row: RowMapping) -> Profile:
    preferences = row["preferences"] or {}
    return Profile(
        user_id=row["user_id"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=row["avatar_url"],
        locale=row["locale"],
        preferences={str(key): str(value) for key, value in preferences.items()},
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def _to_row(profile: Profile) -> dict[str, Any]:
    return {
        "display_name": profile.display_name,
        "bio": profile.bio,
        "avatar_url": profile.avatar_url,
        "locale": profile.locale,
        "preferences": dict(profile.preferences),
        "create_time": profile.create_time,
        "update_time": profile.update_time,
    }


class SqlAlchemyProfileRepository:
    """The ProfileRepository port on a SQLAlchemy session (PostgreSQL or SQLite)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: str) -> Profile | None:
        row = (
            self.session.execute(select(profiles).where(profiles.c.user_id == user_id))
            .mappings()
            .first()
        )
        return None if row is None else _to_profile(row)

    def get_for_update(self, user_id: str) -> Profile | None:
        # FOR UPDATE on PostgreSQL; SQLite ignores it (its write transactions
        # are serialized by the unit of work's BEGIN IMMEDIATE).
        statement = select(profiles).where(profiles.c.user_id == user_id).with_for_update()
        row = self.session.execute(statement).mappings().first()
        return None if row is None else _to_profile(row)

    def add(self, profile: Profile) -> None:
        try:
            self.session.execute(
                insert(profiles).values(user_id=profile.user_id, **_to_row(profile))
            )
        except IntegrityError as exc:
            # The primary key is the only constraint: the profile exists.
            raise DuplicateProfile(profile.user_id) from exc

    def save(self, profile: Profile) -> None:
        self.session.execute(
            update(profiles).where(profiles.c.user_id == profile.user_id).values(**_to_row(profile))
        )
