"""T3 tracker: fires exactly at the expected count, never early, in any arrival order, and stays
correct when the table is full (per-stage fallback)."""

from __future__ import annotations

import random

import pytest

from hwsim.t3.tracker import Tracker


def test_fires_exactly_at_expected_count():
    tr = Tracker([4, 6], entries=8)
    assert tr.count(0, 1) == []
    assert tr.count(0, 1, remote=True) == []
    assert tr.count(0, 1) == []
    assert not tr.fired(0)
    assert tr.count(0, 1, remote=True) == [0]     # the 4th update fires
    assert tr.fired(0)
    assert tr.in_use == 0


def test_never_counts_past_expected():
    tr = Tracker([2], entries=4)
    tr.count(0, 2)
    with pytest.raises(RuntimeError):
        tr.count(0, 1)


def test_batch_count_that_overshoots_is_an_error():
    tr = Tracker([3], entries=4)
    tr.count(0, 2)
    with pytest.raises(RuntimeError):
        tr.count(0, 2)


@pytest.mark.parametrize("seed", range(20))
def test_out_of_order_arrivals_fire_once_at_the_last_update(seed):
    rng = random.Random(seed)
    n_tiles = 12
    expected = [rng.randint(1, 9) * 2 for _ in range(n_tiles)]
    tr = Tracker(expected, entries=64, tiles_per_stage=4)
    events = []
    for key, e in enumerate(expected):
        events += [(key, False)] * (e // 2) + [(key, True)] * (e // 2)   # local and remote halves
    rng.shuffle(events)
    seen = [0] * n_tiles
    fired_at = {}
    for i, (key, remote) in enumerate(events):
        seen[key] += 1
        for k in tr.count(key, 1, remote):
            assert k not in fired_at, "fired twice"
            assert seen[k] == expected[k], "fired early"
            fired_at[k] = i
    assert sorted(fired_at) == list(range(n_tiles))
    # each tile fired exactly at its last update
    last = {}
    for i, (key, _) in enumerate(events):
        last[key] = i
    assert fired_at == last
    assert tr.peak <= n_tiles and tr.fallbacks == 0


def test_full_table_falls_back_to_the_stage_trigger():
    # two stages of 3 tiles, 2 entries: the 3rd tile of stage 0 falls back
    tr = Tracker([2] * 6, entries=2, tiles_per_stage=3)
    assert tr.count(0, 1) == []
    assert tr.count(1, 1) == []
    assert tr.count(2, 1) == []          # table full: tile 2 falls back
    assert tr.fallbacks == 1
    # all tiles of stage 0 have been seen and the only fallen-back tile is complete: it fires
    assert tr.count(2, 1, remote=True) == [2]
    assert tr.count(0, 1, remote=True) == [0]
    assert tr.count(1, 1, remote=True) == [1]
    assert tr.fired(2)


def test_fallback_never_fires_before_every_tile_of_the_stage_is_seen():
    tr = Tracker([1] * 4, entries=1, tiles_per_stage=4)
    fired = tr.count(0, 1)             # tracked, fires at once
    assert fired == [0]
    fired = tr.count(1, 1)             # table free again: tracked, fires
    assert fired == [1]
    # fill the table with an incomplete tile, then overflow
    tr2 = Tracker([2, 1, 1, 1], entries=1, tiles_per_stage=4)
    assert tr2.count(0, 1) == []       # occupies the only entry
    assert tr2.count(1, 1) == []       # falls back (complete) but tiles 2, 3 unseen
    assert tr2.count(2, 1) == []       # falls back, complete; tile 3 unseen
    assert not tr2.fired(1) and not tr2.fired(2)
    assert sorted(tr2.count(3, 1)) == [1, 2, 3]   # last tile seen: all fallen-back tiles complete
    assert tr2.count(0, 1) == [0]


@pytest.mark.parametrize("seed", range(10))
def test_random_orders_with_a_tiny_table_fire_every_tile_exactly_once(seed):
    rng = random.Random(100 + seed)
    tps, stages = 5, 3
    expected = [rng.randint(1, 4) for _ in range(tps * stages)]
    tr = Tracker(expected, entries=2, tiles_per_stage=tps)
    events = [key for key, e in enumerate(expected) for _ in range(e)]
    rng.shuffle(events)
    seen = [0] * len(expected)
    fired = []
    for key in events:
        seen[key] += 1
        for k in tr.count(key, 1, rng.random() < 0.5):
            assert seen[k] == expected[k]
            fired.append(k)
    assert sorted(fired) == list(range(len(expected)))
    assert tr.peak <= 2
