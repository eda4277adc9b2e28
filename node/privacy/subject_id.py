"""Pseudonymous subject ids from Chinese resident ID-card numbers.

`subject_id` = lowercase hex HMAC-SHA256(consortium secret, normalised ID number).
The consortium secret is shared by the members, kept in a file named in each
node's config, and never written on chain or to a log. Without it, no one can
check a guessed ID number against a subject_id on chain.

Normalisation, in order:
1. Unicode NFKC, which turns full-width digits and letters (０-９, Ｘ, ｘ) and the
   ideographic space into their ASCII forms.
2. Remove whitespace and the separators in `SEPARATORS` (hyphens, dashes, dots,
   slashes, underscores, middle dots).
3. Upper-case the check letter: x -> X.
4. An 18-character number must be 17 digits and a check character (0-9 or X)
   that matches ISO 7064 MOD 11-2 (GB 11643-1999), and its birth date
   (characters 7-14) must be a real calendar date.
5. A 15-digit first-generation number is upgraded to its 18-character form: the
   birth year gains the century "19" (first-generation cards carry two-digit
   years, all 19xx) and the check character is computed. So the old and new
   numbers of one person give the same subject_id.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import os
import secrets
import stat
import unicodedata
from pathlib import Path

from node.privacy.errors import PrivacyError

logger = logging.getLogger("xinlian.privacy.subject_id")

SECRET_BYTES_MIN = 32
SEPARATORS = frozenset(" \t\r\n-_./\\·・‐‑‒–—―")
_CHECK_WEIGHTS = tuple(pow(2, 17 - position, 11) for position in range(17))
_CHECK_CHARACTERS = "10X98765432"


def check_character(first_17_digits: str) -> str:
    """Compute the ISO 7064 MOD 11-2 check character of 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17_digits, _CHECK_WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def _reject(reason: str, **details: object) -> PrivacyError:
    # Details never include the number itself: it is personal data.
    return PrivacyError("invalid_id_number", reason=reason, **details)


def _check_birth_date(digits: str) -> None:
    try:
        datetime.date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise _reject("birth date in the number is not a calendar date") from None


def normalise_id_number(raw: str) -> str:
    """Normalise a resident ID-card number to its 18-character form, or raise invalid_id_number."""
    if not isinstance(raw, str):
        raise _reject("ID number must be a string")
    if len(raw) > 64:
        raise _reject("ID number is too long", length=len(raw))

    text = unicodedata.normalize("NFKC", raw)
    text = "".join(character for character in text if character not in SEPARATORS and not character.isspace())
    text = text.upper()

    if len(text) == 15:
        if not (text.isascii() and text.isdigit()):
            raise _reject("a 15-character number must be all digits")
        _check_birth_date("19" + text[6:12])
        first_17 = text[:6] + "19" + text[6:]
        return first_17 + check_character(first_17)

    if len(text) != 18:
        raise _reject("ID number must have 18 characters (or 15 digits)", length=len(text))
    first_17, check = text[:17], text[17]
    if not (first_17.isascii() and first_17.isdigit()) or check not in "0123456789X":
        raise _reject("ID number must be 17 digits followed by a digit or X")
    _check_birth_date(first_17[6:14])
    if check_character(first_17) != check:
        raise _reject("check character does not match (ISO 7064 MOD 11-2)")
    return text


class SubjectIdHasher:
    """Derives subject ids with the consortium secret. The secret never appears in repr or logs."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SECRET_BYTES_MIN:
            raise ValueError(f"consortium secret must have at least {SECRET_BYTES_MIN} bytes, got {len(secret)}")
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return "SubjectIdHasher(secret=<hidden>)"

    def subject_id(self, id_number: str) -> str:
        """Return the subject_id (64 lowercase hex characters) of a raw ID-card number."""
        normalised = normalise_id_number(id_number)
        return hmac.new(self._secret, normalised.encode("ascii"), hashlib.sha256).hexdigest()


def load_consortium_secret(path: str | os.PathLike[str]) -> SubjectIdHasher:
    """Read the consortium secret (hex, at least 32 bytes) from `path` and return a hasher.

    Raises ValueError naming the file, never its content. Logs a warning when
    the file is readable by group or others.
    """
    secret_path = Path(path)
    try:
        text = secret_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read consortium secret file {secret_path}: {type(exc).__name__}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"consortium secret file {secret_path} must contain hex digits only") from None
    if len(secret) < SECRET_BYTES_MIN:
        raise ValueError(f"consortium secret in {secret_path} has {len(secret)} bytes, needs at least {SECRET_BYTES_MIN}")

    mode = secret_path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("consortium secret file %s is accessible by group or others: chmod 600 it", secret_path)
    logger.info("loaded consortium secret from %s", secret_path)
    return SubjectIdHasher(secret)


def write_consortium_secret(path: str | os.PathLike[str], size_bytes: int = SECRET_BYTES_MIN) -> None:
    """Write a new random consortium secret as hex to `path`, with mode 0600. Refuses to overwrite."""
    if size_bytes < SECRET_BYTES_MIN:
        raise ValueError(f"consortium secret needs at least {SECRET_BYTES_MIN} bytes")
    descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_bytes(size_bytes).hex() + "\n")
