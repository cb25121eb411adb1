"""The password policy: length bounds and a refusal of well-known passwords.

The common-password list (data/common-passwords.txt.gz, 19,640 entries, one
lower-cased password per line) is the one Django ships in
django/contrib/auth/common-passwords.txt.gz (BSD licence): Royce Williams'
list of the 20,000 most common passwords from breach corpora, unhexed,
lower-cased and deduplicated
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from switchyard_kit import FieldViolation

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
COMMON_PASSWORDS_RESOURCE = "common-passwords.txt.gz"


@cache
def common_passwords() -> frozenset[str]:
    """The packaged list of common passwords, lower-cased; read once per process."""
    data = resources.files("auth_service.domain").joinpath("data", COMMON_PASSWORDS_RESOURCE)
    with data.open("rb") as compressed, gzip.open(compressed, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy (NIST SP 800-63B: length and a
    blocklist, no composition rules).

    Example::

        PasswordPolicy().violations("password1", field="password")
        # [FieldViolation("password", "is too common; choose a less guessable password")]
    """

    min_length: int = MIN_PASSWORD_LENGTH
    max_length: int = MAX_PASSWORD_LENGTH
    blocklist: frozenset[str] | None = None

    def violations(
        self, password: str, *, field: str, personal: Iterable[str] = ()
    ) -> list[FieldViolation]:
        """Why `password` is refused, as violations of `field`; empty when it is fine.

        `personal` holds values the password must not equal (the email address
        and its local part).
        """
        if not password:
            return [FieldViolation(field, "is required")]
        if len(password) < self.min_length:
            return [FieldViolation(field, f"must be at least {self.min_length} characters")]
        if len(password) > self.max_length:
            return [FieldViolation(field, f"must be at most {self.max_length} characters")]
        folded = password.strip().casefold()
        blocklist = self.blocklist if self.blocklist is not None else common_passwords()
        if folded in blocklist:
            return [FieldViolation(field, "is too common; choose a less guessable password")]
        if any(folded == value.casefold() for value in personal if value):
            return [FieldViolation(field, "must not be your email address")]
        return []
