"""The stamps the state DB keeps (`bridge.stamps`): their formats must never change, or every
stored timestamp and hash would look changed to the next sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from bridge.stamps import digest, digester, iso, text_hash


def test_digests_are_the_stored_blake2b_hex() -> None:
    assert digest(b"zob") == "28324c023f7ebab1a5634278840ad6d4"
    assert digest(b"zob", size=12) == "73d16f9d4c3e2ce40a7a82e7"
    incremental = digester()
    incremental.update(b"z")
    incremental.update(b"ob")
    assert incremental.hexdigest() == digest(b"zob")


def test_a_text_hashes_as_its_file_s_bytes_lone_surrogates_included() -> None:
    assert text_hash("zöb") == digest("zöb".encode())
    assert text_hash("zöb\ud800") == "16ab2214e1772cfb0c40a7ef9ced2d22"


def test_timestamps_are_utc_to_the_second() -> None:
    assert iso(datetime(2026, 1, 2, 3, 4, 5, 999)) == "2026-01-02T03:04:05Z"  # naive: UTC
    east = timezone(timedelta(hours=8))
    assert iso(datetime(2026, 1, 2, 11, 4, 5, tzinfo=east)) == "2026-01-02T03:04:05Z"
    assert iso().endswith("Z") and len(iso()) == len("2026-01-02T03:04:05Z")
    assert iso(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00Z"
