from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fedge.shared.secagg.prg import Stream, expand, keystream


def test_expansions_replay_the_vectors(vector):
    for case in vector("prg.json")["cases"]:
        seed = bytes.fromhex(case["seed"])
        assert keystream(seed, 64).hex() == case["keystream_64"]
        assert expand(seed, 16).tolist() == case["first_16"]
        long = expand(seed, 1_240_000)
        assert hashlib.sha256(long.astype("<u4").tobytes()).hexdigest() == case["count_1240000_sha256"]
        assert int(long[-1]) == case["count_1240000_last"]


def test_values_are_the_keystream_read_little_endian():
    seed = bytes(range(32))
    assert expand(seed, 5).tolist() == np.frombuffer(keystream(seed, 20), "<u4").tolist()


def test_a_shorter_expansion_is_a_prefix_of_a_longer_one():
    seed = bytes(32)
    long = expand(seed, (1 << 18) + 3)  # crosses the internal 1 MiB chunk boundary
    assert np.array_equal(expand(seed, 1000), long[:1000])
    assert np.array_equal(expand(seed, 1 << 18), long[: 1 << 18])


def test_expansion_is_a_fresh_writable_uint32_array():
    first, second = expand(bytes(32), 4), expand(bytes(32), 4)
    assert first.dtype == np.uint32 and first.flags.writeable
    assert not np.shares_memory(first, second)


def test_zero_count_gives_an_empty_array():
    assert expand(bytes(32), 0).shape == (0,)


@pytest.mark.parametrize("size", [16, 31, 33])
def test_wrong_seed_length_is_refused_with_the_rule(size):
    with pytest.raises(ValueError, match=f"exactly 32 bytes, got {size}"):
        expand(bytes(size), 4)


def test_seed_as_text_is_refused():
    with pytest.raises(TypeError, match="must be 32 bytes, got str"):
        expand("00" * 16, 4)


def test_negative_count_is_refused():
    with pytest.raises(ValueError, match="non-negative int, got -1"):
        expand(bytes(32), -1)


def test_a_stream_from_an_offset_reads_on_where_the_expansion_is():
    seed, scratch = bytes(range(32)), np.empty(1004, np.uint32)
    whole = expand(seed, 3000)
    stream = Stream(seed, 2000)
    assert np.array_equal(stream.next_into(scratch, 600), whole[2000:2600])
    assert np.array_equal(stream.next_into(scratch, 400), whole[2600:3000])


def test_a_stream_starts_at_a_whole_block():
    with pytest.raises(ValueError, match="multiple of 4 values\\), got 6"):
        Stream(bytes(32), 6)


def test_a_stream_wants_room_for_a_spare_block():
    with pytest.raises(ValueError, match="at least 14 values"):
        Stream(bytes(32)).next_into(np.empty(12, np.uint32), 10)
