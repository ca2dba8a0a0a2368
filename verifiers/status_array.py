"""The Token Status List itself (draft-ietf-oauth-status-list-20/-21 §4, §7): statuses packed
into bits, and the compressed ``lst`` form they travel in.

Each status takes 1, 2, 4 or 8 bits; index ``i`` sits in byte ``i * bits // 8`` starting at
bit ``(i * bits) % 8``, least significant bits first (§4.1). ``lst`` is the byte array
compressed with DEFLATE in the zlib format, level 9, then base64url without padding (§4.2).
CPython's zlib at level 9 reproduces the draft's published ``lst`` strings byte for byte.

The issuer's list and the Status List Token are in ``verifiers.statuslist``.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator, Mapping
from enum import IntEnum
from typing import Any, TypeGuard

from vault.errors import InvalidInput, KluisError, VerificationFailed

BITS = (1, 2, 4, 8)
# A list that inflates beyond 16 MiB (2**27 one-bit entries, far beyond any real list) is
# refused: it bounds what a hostile "zip bomb" can make a relying party allocate.
MAX_LIST_BYTES = 1 << 24

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class BadList(InvalidInput):
    code = "status.bad_list"
    en = "The status list is damaged or not in the right format. Try again later."
    nl = "De statuslijst is beschadigd of heeft niet de juiste vorm. Probeer het later opnieuw."


class BadParameters(InvalidInput):
    code = "status.bad_parameters"
    en = "These status list settings are not possible. Check the list size, bits and key."
    nl = (
        "Deze instellingen voor de statuslijst zijn niet mogelijk. "
        "Controleer de grootte, het aantal bits en de sleutel."
    )


class IndexOutOfRange(VerificationFailed):
    code = "status.index_out_of_range"
    en = "The credential points to a place outside its status list, so its status is unknown."
    nl = "Het bewijs verwijst naar een plek buiten de statuslijst. De status is daarom onbekend."


class StatusValue(IntEnum):
    """The registered status values (§7.1). 0x03 and 0x0C-0x0F are application-specific."""

    VALID = 0
    INVALID = 1
    SUSPENDED = 2


class StatusArray:
    """Statuses of ``bits`` bits each, packed least significant bits first (§4.1).

    The length is ``len(bytes) * 8 // bits``: the padding entries of the last byte count, and
    are 0. Values are plain ints, so application-specific ones pass through unchanged.
    """

    __slots__ = ("_data", "bits")

    def __init__(self, bits: int, size: int) -> None:
        """An all-VALID array. Raises ``status.bad_parameters`` unless ``bits`` is 1, 2, 4
        or 8 and ``size`` entries fill whole bytes."""
        _require_bits(bits, BadParameters)
        if size < 1 or size * bits % 8:
            raise BadParameters(f"Token Status List §4.1: {size} x {bits} bits is not whole bytes")
        self.bits = bits
        self._data = bytearray(size * bits // 8)

    @classmethod
    def from_bytes(cls, bits: int, data: bytes) -> StatusArray:
        """The array over a copy of ``data``. Raises ``status.bad_list`` for bad ``bits``."""
        _require_bits(bits, BadList)
        array = cls.__new__(cls)
        array.bits = bits
        array._data = bytearray(data)
        return array

    def __len__(self) -> int:
        return len(self._data) * 8 // self.bits

    def __getitem__(self, index: int) -> int:
        """The status at ``index``. Raises ``status.index_out_of_range`` (§8.3)."""
        if not 0 <= index < len(self):
            raise IndexOutOfRange(f"Token Status List §8.3: index {index} >= size {len(self)}")
        offset = index * self.bits
        return self._data[offset >> 3] >> (offset & 7) & ((1 << self.bits) - 1)

    def __setitem__(self, index: int, value: int) -> None:
        """Set a status. Raises ``status.bad_parameters`` outside the list or the bit width."""
        mask = (1 << self.bits) - 1
        if not 0 <= index < len(self) or not 0 <= value <= mask:
            raise BadParameters(f"Token Status List §4.1: no {value} at {index} of {len(self)}")
        offset = index * self.bits
        byte, shift = offset >> 3, offset & 7
        self._data[byte] = self._data[byte] & ~(mask << shift) | value << shift

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusArray):
            return NotImplemented
        return (self.bits, self._data) == (other.bits, other._data)

    __hash__ = None  # type: ignore[assignment]  # mutable, so not hashable

    def to_bytes(self) -> bytes:
        """The packed byte array (§4.1)."""
        return bytes(self._data)

    def nonzero(self) -> Iterator[tuple[int, int]]:
        """Every ``(index, value)`` that is not VALID, in index order."""
        per_byte, mask = 8 // self.bits, (1 << self.bits) - 1
        for byte_index, byte in enumerate(self._data):
            if byte:
                for slot in range(per_byte):
                    value = byte >> (slot * self.bits) & mask
                    if value:
                        yield byte_index * per_byte + slot, value


def encode_lst(array: StatusArray) -> str:
    """``base64url(zlib(DEFLATE level 9))`` of the packed bytes, unpadded (§4.2)."""
    return b64url(zlib.compress(array.to_bytes(), 9))


def decode_lst(lst: str, *, bits: int) -> StatusArray:
    """The status array behind ``lst`` (§4.2).

    Raises ``status.bad_list`` if ``bits`` is not 1, 2, 4 or 8, if ``lst`` is not canonical
    unpadded base64url, or if the zlib stream is damaged, truncated, followed by other bytes,
    empty, or inflates to more than ``MAX_LIST_BYTES``.
    """
    _require_bits(bits, BadList)
    compressed = unb64url(lst, BadList)
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(compressed, MAX_LIST_BYTES)
    except zlib.error:
        raise BadList("Token Status List §4.2: lst is not a zlib stream") from None
    if inflater.unconsumed_tail:
        raise BadList(f"kluis limit: a status list inflates to at most {MAX_LIST_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise BadList("Token Status List §4.2: lst is exactly one complete zlib stream")
    if not data:
        raise BadList("Token Status List §4.1: the list is empty")
    return StatusArray.from_bytes(bits, data)


def format_status_list(array: StatusArray) -> dict[str, Any]:
    """The ``status_list`` claim ``{"bits": ..., "lst": ...}`` (§4.2)."""
    return {"bits": array.bits, "lst": encode_lst(array)}


def parse_status_list(claim: object) -> StatusArray:
    """The array in a ``status_list`` claim. Raises ``status.bad_list`` (§4.2)."""
    if not isinstance(claim, Mapping):
        raise BadList("Token Status List §4.2: status_list is a JSON object")
    bits, lst = claim.get("bits"), claim.get("lst")
    if not is_int(bits) or not isinstance(lst, str):
        raise BadList("Token Status List §4.2: bits is a number and lst a string")
    return decode_lst(lst, bits=bits)


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: object, error: type[KluisError]) -> bytes:
    """Strict unpadded base64url, canonical only (one spelling per byte string), or ``error``."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise error("RFC 7515 §2: not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise error("RFC 7515 §2: not base64url") from None
    if b64url(data) != text:
        raise error("RFC 7515 §2: not the canonical base64url")
    return data


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer: an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _require_bits(bits: object, error: type[KluisError]) -> None:
    if not is_int(bits) or bits not in BITS:
        raise error(f"Token Status List §4.1: bits is one of {BITS}")
