"""Unit tests of ``fleet.leases``: grants, compare-and-set on the holder id, fencing epochs,
expiry at ``renewed_at + ttl``, refusals naming the holder. Time is always an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beamwarden.fleet.errors import FleetError, InvalidLease, LeaseHeld, StaleEpoch
from beamwarden.fleet.leases import (
    DEFAULT_INTERVAL,
    DEFAULT_TTL,
    Grant,
    Holder,
    Lease,
    LeaseRefusal,
    acquire,
    epoch_is_current,
    is_expired,
    may_release,
    renew,
    ttl_for_interval,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=45)
A = Holder("inst-a", "pi-kitchen", "192.168.1.20")
B = Holder("inst-b", "pi-kitchen", "192.168.1.20")  # a cloned SD card: same host, same IP


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def granted(result: Grant | LeaseRefusal) -> Lease:
    assert isinstance(result, Grant)
    return result.lease


def test_defaults_are_interval_15_ttl_45() -> None:
    assert DEFAULT_INTERVAL.total_seconds() == 15
    assert DEFAULT_TTL.total_seconds() == 45
    assert ttl_for_interval(DEFAULT_INTERVAL) == DEFAULT_TTL
    assert ttl_for_interval(timedelta(seconds=30)).total_seconds() == 90


def test_a_free_lease_is_granted_with_epoch_1() -> None:
    assert acquire(None, 0, "node:n1", A, TTL, T0) == Grant(
        Lease("node:n1", A, 1, T0, T0, TTL), new=True, replaced=None
    )


def test_same_host_is_not_same_holder() -> None:
    lease = granted(acquire(None, 0, "node:n1", A, TTL, T0))
    assert acquire(lease, 1, "node:n1", B, TTL, at(10)) == LeaseRefusal(
        "node:n1", A, 1, T0, timedelta(seconds=35)
    )
    assert renew(lease, B.holder_id, at(10)) is None
    assert not may_release(lease, B.holder_id, at(10))


def test_a_refusal_names_the_holder_for_a_person() -> None:
    lease = granted(acquire(None, 0, "node:n1", A, TTL, T0))
    refused = acquire(lease, 1, "node:n1", B, TTL, at(12.5))
    assert isinstance(refused, LeaseRefusal)
    assert refused.message == (
        "lease 'node:n1' is held by inst-a on pi-kitchen (192.168.1.20) since "
        "2026-11-22T12:00:00+00:00, 32.5 s left"
    )
    error = LeaseHeld(refused)
    assert (str(error), error.refusal, error.code) == (refused.message, refused, "lease_held")
    assert isinstance(error, FleetError)


def test_a_holder_without_host_is_named_by_its_id() -> None:
    assert Holder("worker-7").describe() == "worker-7"
    assert Holder("worker-7", ip="10.0.0.9").describe() == "worker-7 (10.0.0.9)"


def test_the_holder_re_acquiring_renews_with_the_same_epoch() -> None:
    lease = granted(acquire(None, 0, "job", A, TTL, T0))
    moved = Holder("inst-a", "pi-kitchen", "192.168.1.21")
    assert acquire(lease, 1, "job", moved, timedelta(seconds=60), at(30)) == Grant(
        Lease("job", moved, 1, T0, at(30), timedelta(seconds=60)), new=False
    )


def test_held_at_44_expired_at_46() -> None:
    lease = granted(acquire(None, 0, "job", A, TTL, T0))
    assert lease.held(at(44))
    assert not is_expired(lease, at(44))
    assert not lease.held(at(45))  # expires_at itself is already expired
    assert not lease.held(at(46))
    assert is_expired(lease, at(46))
    assert lease.time_left(at(44)) == timedelta(seconds=1)
    assert lease.time_left(at(46)) == timedelta(0)


def test_renewal_moves_the_deadline() -> None:
    lease = granted(acquire(None, 0, "job", A, TTL, T0))
    renewed = renew(lease, "inst-a", at(15))
    assert renewed == Lease("job", A, 1, T0, at(15), TTL)
    assert renewed.held(at(59))
    assert renew(renewed, "inst-a", at(20), timedelta(seconds=5)) == Lease(
        "job", A, 1, T0, at(20), timedelta(seconds=5)
    )


def test_silent_60s_then_a_second_claims_with_epoch_2() -> None:
    first = granted(acquire(None, 0, "node:n1", A, TTL, T0))
    grant = acquire(first, 1, "node:n1", B, TTL, at(60))
    assert grant == Grant(Lease("node:n1", B, 2, at(60), at(60), TTL), new=True, replaced=first)
    second = granted(grant)
    assert renew(second, "inst-a", at(61)) is None  # lease lost
    assert not may_release(second, "inst-a", at(61))
    assert may_release(second, "inst-b", at(61))
    assert not epoch_is_current(second, 1, at(61))
    assert epoch_is_current(second, 2, at(61))


def test_an_expired_lease_cannot_be_renewed_released_or_written_with() -> None:
    lease = granted(acquire(None, 0, "job", A, TTL, T0))
    assert renew(lease, "inst-a", at(45)) is None
    assert not may_release(lease, "inst-a", at(45))
    assert not epoch_is_current(lease, 1, at(45))
    assert not epoch_is_current(None, 1, at(45))
    assert renew(None, "inst-a", T0) is None
    assert not may_release(None, "inst-a", T0)
    assert not is_expired(None, T0)


def test_the_epoch_counter_outlives_released_leases() -> None:
    # after a release the store forgets the lease but not the highest epoch
    assert granted(acquire(None, 7, "job", A, TTL, T0)).epoch == 8


def test_the_epoch_never_goes_back_even_if_the_counter_lags() -> None:
    stale = Lease("job", A, 9, T0, T0, TTL)
    assert granted(acquire(stale, 3, "job", B, TTL, at(50))).epoch == 10


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1)])
def test_a_ttl_must_be_positive(ttl: timedelta) -> None:
    with pytest.raises(InvalidLease, match="TTL must be positive"):
        acquire(None, 0, "job", A, ttl, T0)
    lease = granted(acquire(None, 0, "job", A, TTL, T0))
    with pytest.raises(InvalidLease):
        renew(lease, "inst-a", T0, ttl)


# --- random sequences: one store, many claimants ------------------------------------------------

HOLDERS = [Holder(f"h{i}", "same-host", "10.0.0.1") for i in range(3)]
OPS = st.tuples(
    st.sampled_from(["acquire", "renew", "release"]),
    st.sampled_from(HOLDERS),
    st.integers(min_value=0, max_value=60),  # seconds since the previous operation
)


@given(st.lists(OPS, max_size=50))
def test_random_operations_keep_one_holder_and_growing_epochs(
    ops: list[tuple[str, Holder, int]],
) -> None:
    current: Lease | None = None
    last_epoch = 0
    now = T0
    for op, holder, step in ops:
        now += timedelta(seconds=step)
        before = current
        if op == "acquire":
            result = acquire(current, last_epoch, "job", holder, TTL, now)
            if isinstance(result, Grant):
                current = result.lease
                assert current.held_by(holder.holder_id, now)
                if result.new:
                    assert current.epoch == last_epoch + 1
                    assert before is None or not before.held(now)
                else:
                    assert before is not None
                    assert current.epoch == before.epoch
            else:
                assert before is not None
                assert before.held(now)
                assert before.holder != holder
                assert result.holder == before.holder
        elif op == "renew":
            renewed = renew(current, holder.holder_id, now)
            if renewed is None:
                assert current is None or not current.held_by(holder.holder_id, now)
            else:
                assert current is not None
                assert renewed.epoch == current.epoch
                current = renewed
        elif may_release(current, holder.holder_id, now):
            current = None
        if current is not None:
            assert current.epoch >= last_epoch
            last_epoch = current.epoch
            assert epoch_is_current(current, last_epoch, now) == current.held(now)


def test_a_stale_epoch_error_names_the_lease_and_epoch() -> None:
    error = StaleEpoch("node:n1", 1)
    assert (error.name, error.epoch, error.code) == ("node:n1", 1, "stale_epoch")
    assert str(error) == "epoch 1 of lease 'node:n1' is stale: the lease was lost"
