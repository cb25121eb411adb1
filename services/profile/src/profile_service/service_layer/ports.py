"""What the profile service layer needs from storage and cache: the unit of work
and the repository in it, and the profile cache. Adapters implement these
(adapters.unit_of_work, adapters.repository, adapters.cache); the unit tests
fake them."""

from __future__ import annotations

from typing import Protocol

from switchyard_kit import Transaction

from profile_service.domain.model import Profile


class DuplicateProfile(Exception):
    """The user already has a profile (another request created it first)."""


class ProfileRepository(Protocol):
    """Profiles by user id."""

    def get(self, user_id: str) -> Profile | None:
        """The profile, or None."""
        ...

    def get_for_update(self, user_id: str) -> Profile | None:
        """The profile, locked against concurrent updates until the transaction ends."""
        ...

    def add(self, profile: Profile) -> None:
        """Insert a new profile; DuplicateProfile when the user already has one."""
        ...

    def save(self, profile: Profile) -> None:
        """Write back a changed profile."""
        ...


class CachedProfiles(Protocol):
    """Profiles by user id kept for a while; a failing cache reads as a miss."""

    def get(self, user_id: str) -> Profile | None: ...

    def put(self, profile: Profile) -> None: ...

    def invalidate(self, user_id: str) -> None: ...


class AbstractUnitOfWork(Transaction, Protocol):
    """One business transaction on the primary, or a read on the replica:
    `with uow: ...; uow.commit()`; leaving without commit rolls back."""

    profiles: ProfileRepository


class UnitOfWorkFactory(Protocol):
    """Makes a unit of work about `for_user`'s profile.

    `read_only=True` may read a replica (a few seconds stale at most) and never
    commits; it reads the primary while the replica has not yet replayed the
    last committed write of `for_user`. A writing unit for_user records that
    write on commit.
    """

    def __call__(
        self, *, read_only: bool = False, for_user: str | None = None
    ) -> AbstractUnitOfWork: ...
