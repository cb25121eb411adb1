"""The profile use cases. Each takes plain values and returns domain objects.

Reads are cache-aside: the cache first, then the database (the replica when
one is configured and may serve the read), then the cache is filled for `ttl`
seconds. Reads and writes are "for" the profile's owner: after an update,
reads of that profile go to the primary until the replica has replayed it, so
neither its owner nor the cache ever gets the version before the update back
from a lagging replica. An update
deletes the cached entry after its transaction commits. A stale entry can
therefore live at most one TTL (a read that raced an update, or an
invalidation lost to a Redis outage).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from switchyard_kit import Aborted, NotFound, Unauthenticated, utc_now

from profile_service.domain import validation
from profile_service.domain.model import (
    Profile,
    ProfileDraft,
    ProfileUpdate,
    PublicProfile,
    default_display_name,
    new_profile,
    parse_update,
    parse_user_id,
)
from profile_service.service_layer.ports import (
    CachedProfiles,
    DuplicateProfile,
    UnitOfWorkFactory,
)

logger = logging.getLogger("profile.handlers")

Clock = Callable[[], datetime]


class ProfileHandlers:
    """CreateProfile, GetMyProfile, UpdateMyProfile and GetPublicProfile.

    Example::

        handlers = ProfileHandlers(sqlalchemy_unit_of_work_factory(database), cache)
        profile = handlers.get_my_profile(caller_user_id)
    """

    def __init__(
        self, uow: UnitOfWorkFactory, cache: CachedProfiles, clock: Clock = utc_now
    ) -> None:
        self.uow = uow
        self.cache = cache
        self.clock = clock

    def create_profile(self, user_id: str, display_name: str) -> Profile:
        """Create the profile of a new account; an existing one is returned unchanged.

        Safe under concurrent duplicates: the primary key admits one row, and
        the losers of the race read the winner's profile.
        """
        return self._create_if_missing(new_profile(user_id, display_name, self.clock()))

    def register_user(self, user_id: str, display_name: str) -> Profile:
        """A new account was announced (auth's UserRegistered event): create its profile.

        Idempotent, as events come at least once. If the profile was already
        created lazily (the user read it before the event arrived) and is
        untouched since, it takes the name given at signup, which would
        otherwise be lost.
        """
        candidate = new_profile(user_id, display_name, self.clock())
        profile = self._create_if_missing(candidate)
        if (
            profile is not candidate
            and candidate.display_name != default_display_name(candidate.user_id)
            and profile.display_name == default_display_name(profile.user_id)
            and profile.update_time == profile.create_time
        ):
            updated = self._apply_update(
                profile.user_id, ProfileUpdate(display_name=candidate.display_name)
            )
            self.cache.invalidate(profile.user_id)
            if updated is not None:
                logger.info(
                    "signup display name applied to a lazily created profile",
                    extra={"profile_user_id": profile.user_id},
                )
                return updated
        return profile

    def get_my_profile(self, caller: str) -> Profile:
        """The caller's profile, created on the spot when it is missing.

        Auth creates the profile at signup, but if that call failed the
        account exists without one: rather than answer NOT_FOUND for the
        caller's own profile forever, the first read creates it (default
        display name). A user is never left without a profile.
        """
        user_id = self._caller(caller)
        profile = self._read(user_id)
        if profile is None:
            profile = self._create_if_missing(
                Profile.new(user_id, default_display_name(user_id), self.clock())
            )
            logger.warning(
                "profile was missing and has been created", extra={"profile_user_id": user_id}
            )
            self.cache.put(profile)
        return profile

    def update_my_profile(self, caller: str, draft: ProfileDraft, mask: Sequence[str]) -> Profile:
        """Change the fields named in `mask` to their values in `draft`.

        Everything is validated before the database is touched, so a bad
        update writes nothing. A missing profile is created first (as in
        get_my_profile), then updated.
        """
        user_id = self._caller(caller)
        # Named by the request's field paths, as profile.proto's rules name theirs.
        update = parse_update(draft, mask, field_prefix="profile.")
        profile = self._apply_update(user_id, update)
        if profile is None:
            self._create_if_missing(
                Profile.new(user_id, default_display_name(user_id), self.clock())
            )
            profile = self._apply_update(user_id, update)
            if profile is None:  # profiles are never deleted, so this is a concurrent oddity
                raise Aborted("the profile changed during the update; try again")
        self.cache.invalidate(user_id)
        logger.info("profile updated", extra={"profile_user_id": user_id, "fields": update.fields})
        return profile

    def get_public_profile(self, user_id: str) -> PublicProfile:
        """What other users may see; NOT_FOUND when the user has no profile."""
        user_id = parse_user_id(user_id)
        profile = self._read(user_id)
        if profile is None:
            raise NotFound("no profile for this user")
        return profile.public()

    def _caller(self, caller: str) -> str:
        # The gateway puts the verified token subject here; anything but a
        # user id means the call did not come through it properly.
        if not validation.is_user_id(caller):
            raise Unauthenticated("the caller is not a valid user")
        return validation.normalize_user_id(caller)

    def _read(self, user_id: str) -> Profile | None:
        """Cache first, then the read database; a found profile fills the cache."""
        cached = self.cache.get(user_id)
        if cached is not None:
            return cached
        with self.uow(read_only=True, for_user=user_id) as uow:
            profile = uow.profiles.get(user_id)
        if profile is not None:
            self.cache.put(profile)
        return profile

    def _create_if_missing(self, candidate: Profile) -> Profile:
        try:
            with self.uow(for_user=candidate.user_id) as uow:
                uow.profiles.add(candidate)
                uow.commit()
        except DuplicateProfile:
            # Read it back from the primary: a replica may not have it yet.
            with self.uow() as uow:
                existing = uow.profiles.get(candidate.user_id)
            if existing is None:
                raise Aborted("the profile is being created; try again") from None
            return existing
        logger.info("profile created", extra={"profile_user_id": candidate.user_id})
        return candidate

    def _apply_update(self, user_id: str, update: ProfileUpdate) -> Profile | None:
        with self.uow(for_user=user_id) as uow:
            profile = uow.profiles.get_for_update(user_id)
            if profile is None:
                return None
            profile.apply(update, self.clock())
            uow.profiles.save(profile)
            uow.commit()
        return profile
