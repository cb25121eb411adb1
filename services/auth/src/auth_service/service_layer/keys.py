"""The signing keys of this process: loaded from the database, created on first use."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth_service.domain.model import SigningKey
from auth_service.domain.tokens import ALGORITHM, JsonWebKey, key_id
from auth_service.service_layer import audit
from auth_service.service_layer.ports import KeyVault, TokenSigner, UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rotation:
    """The outcome of a key rotation."""

    kid: str
    previous_kids: list[str]
    retire_at: datetime


@dataclass(frozen=True)
class ActiveKey:
    """The key this process signs with: its id and the opened private key."""

    kid: str
    private_key: bytes


class KeyRing:
    """Finds the key to sign with, creating the first one when the database has none.

    Keys live in the database so every replica signs with the same key and a
    restart does not invalidate issued tokens. When two processes create a
    first key at the same moment, both keys are stored and published, and both
    processes then sign with the oldest (ties broken by kid), so they converge.
    The chosen key is cached for `cache_seconds`.
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        signer: TokenSigner,
        vault: KeyVault,
        clock: Callable[[], datetime],
        cache_seconds: float = 300.0,
    ) -> None:
        self._uow_factory = uow_factory
        self._signer = signer
        self._vault = vault
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._active: ActiveKey | None = None
        self._loaded_at = 0.0

    def active(self) -> ActiveKey:
        """The key to sign with now."""
        with self._lock:
            fresh = time.monotonic() - self._loaded_at < self._cache_seconds
            if self._active is None or not fresh:
                self._active = self._load_or_create()
                self._loaded_at = time.monotonic()
            return self._active

    def published(self) -> list[JsonWebKey]:
        """The public keys that verify tokens (the JWKS), creating the first key if needed."""
        self.active()
        with self._uow_factory() as uow:
            keys = uow.signing_keys.published(self._clock())
        return [JsonWebKey(kid=key.kid, x=key.public_key) for key in keys]

    def rotate(self, token_lifetime: timedelta) -> Rotation:
        """Create a new signing key; the current ones stop signing now.

        The old keys stay published until every token they may still sign
        has expired: other processes keep their cached key for up to
        `cache_seconds`, and a token lives `token_lifetime` (access TTL plus
        the verifiers' clock leeway), so retirement is now + both.
        """
        now = self._clock()
        retire_at = now + timedelta(seconds=self._cache_seconds) + token_lifetime
        new_kid = self._create()
        with self._uow_factory() as uow:
            previous = [key.kid for key in uow.signing_keys.signing(now) if key.kid != new_kid]
            for kid in previous:
                uow.signing_keys.retire(kid, signing_until=now, retired_at=retire_at)
            event = audit.record(
                uow,
                audit.SIGNING_KEY_ROTATED,
                now,
                details={
                    "kid": new_kid,
                    "previous_kids": ",".join(previous),
                    "retire_at": retire_at.isoformat(),
                },
            )
            uow.commit()
        audit.emit(event)
        with self._lock:
            self._active = None  # this process switches at once
        logger.info(
            "signing key rotated",
            extra={"kid": new_kid, "previous_kids": previous, "retire_at": retire_at.isoformat()},
        )
        return Rotation(kid=new_kid, previous_kids=previous, retire_at=retire_at)

    def _load_or_create(self) -> ActiveKey:
        with self._uow_factory() as uow:
            candidates = uow.signing_keys.signing(self._clock())
        if not candidates:
            self._create()
            with self._uow_factory() as uow:
                candidates = uow.signing_keys.signing(self._clock())
        if not candidates:
            raise RuntimeError("no signing key could be created")
        chosen = candidates[0]
        return ActiveKey(
            kid=chosen.kid, private_key=self._vault.open(chosen.private_key, chosen.key_encryption)
        )

    def _create(self) -> str:
        pair = self._signer.new_key_pair()
        key = SigningKey(
            kid=key_id(pair.public_key),
            algorithm=ALGORITHM,
            public_key=pair.public_key,
            private_key=self._vault.seal(pair.private_key),
            key_encryption=self._vault.encryption,
            created_at=self._clock(),
        )
        with self._uow_factory() as uow:
            uow.signing_keys.add(key)
            uow.commit()
        logger.info(
            "signing key created", extra={"kid": key.kid, "key_encryption": key.key_encryption}
        )
        return key.kid
