"""Fakes for the unit tests: a repository over a dict, a unit of work that
counts commits, the kit's in-process cache, and a clock that ticks."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import pytest
from profile_service.adapters.cache import ProfileCache
from profile_service.domain.model import Profile
from profile_service.service_layer.handlers import ProfileHandlers
from profile_service.service_layer.ports import DuplicateProfile
from switchyard_kit import InProcessCache


class FakeRepository:
    """ProfileRepository over a dict; hands out copies like a real database would."""

    def __init__(self, rows: dict[str, Profile]) -> None:
        self.rows = rows
        self.pending: dict[str, Profile] = {}

    def get(self, user_id: str) -> Profile | None:
        profile = self.pending.get(user_id) or self.rows.get(user_id)
        return copy.deepcopy(profile)

    def get_for_update(self, user_id: str) -> Profile | None:
        return self.get(user_id)

    def add(self, profile: Profile) -> None:
        if profile.user_id in self.rows or profile.user_id in self.pending:
            raise DuplicateProfile(profile.user_id)
        self.pending[profile.user_id] = copy.deepcopy(profile)

    def save(self, profile: Profile) -> None:
        self.pending[profile.user_id] = copy.deepcopy(profile)


@dataclass
class FakeDatabase:
    rows: dict[str, Profile] = field(default_factory=dict)
    commits: int = 0
    read_only_units: int = 0


class FakeUnitOfWork:
    def __init__(self, database: FakeDatabase, read_only: bool) -> None:
        self.database = database
        self.read_only = read_only
        self.profiles = FakeRepository(database.rows)

    def __enter__(self) -> Self:
        if self.read_only:
            self.database.read_only_units += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.profiles.pending.clear()  # rollback of whatever was not committed

    def commit(self) -> None:
        assert not self.read_only, "read-only units never commit"
        self.database.rows.update(self.profiles.pending)
        self.profiles.pending.clear()
        self.database.commits += 1


class TickingClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def cache() -> InProcessCache:
    return InProcessCache("profile-test")


@pytest.fixture
def handlers(database: FakeDatabase, cache: InProcessCache) -> ProfileHandlers:
    def uow(*, read_only: bool = False, for_user: str | None = None) -> FakeUnitOfWork:
        return FakeUnitOfWork(database, read_only)

    return ProfileHandlers(uow, ProfileCache(cache, ttl_seconds=60), clock=TickingClock())
