"""Stand-in ID-card numbers for Home Credit clients, who carry no real identity.

A stand-in number is 18 characters that pass the resident ID-card checks
(GB 11643-1999: a calendar birth date and the ISO 7064 MOD 11-2 check
character), so the normal subject_id path accepts it. Yet it is plainly not a
real person's number:

    990 AAA 19000101 BBB C

- `990` starts the address code with province 99, which no province has.
- `AAA` and `BBB` are the upper and lower three digits of SK_ID_CURR, so the
  client can be read back from the number.
- `19000101` is the birth date of every stand-in subject.
- `C` is the check character.
"""

from __future__ import annotations

from node.privacy.subject_id import check_character

STAND_IN_PREFIX = "990"
STAND_IN_BIRTH_DATE = "19000101"
CLIENT_ID_MAX = 999_999


def stand_in_id_number(client_id: int) -> str:
    """Build the stand-in ID-card number of a Home Credit client (SK_ID_CURR 0..999999)."""
    if not 0 <= client_id <= CLIENT_ID_MAX:
        raise ValueError(f"client id {client_id} is outside 0..{CLIENT_ID_MAX}, so it has no stand-in ID number")
    upper, lower = divmod(client_id, 1000)
    first_17 = f"{STAND_IN_PREFIX}{upper:03d}{STAND_IN_BIRTH_DATE}{lower:03d}"
    return first_17 + check_character(first_17)


def client_id_of(id_number: str) -> int:
    """Read SK_ID_CURR back from a stand-in ID-card number; raise ValueError for any other number."""
    if len(id_number) != 18 or not id_number.startswith(STAND_IN_PREFIX) or id_number[6:14] != STAND_IN_BIRTH_DATE:
        raise ValueError("not a stand-in ID number of the Home Credit demo")
    return int(id_number[3:6]) * 1000 + int(id_number[14:17])
