from __future__ import annotations

import hashlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedge.shared.secagg.prg import SEGMENT, Expander, expand, keystream, scratch


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
    long = expand(seed, 3 * SEGMENT + 3)  # crosses segment boundaries
    assert np.array_equal(expand(seed, 1000), long[:1000])
    assert np.array_equal(expand(seed, SEGMENT + 1), long[: SEGMENT + 1])


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


def test_each_segment_is_aes_256_ctr_from_its_nonce_and_counter_two():
    """The format, checked against OpenSSL's CTR mode (the code under test uses GCM's)."""
    seed = bytes(range(32))
    long = keystream(seed, 4 * (2 * SEGMENT + 100))
    for segment in range(3):
        counter = segment.to_bytes(12, "big") + (2).to_bytes(4, "big")
        ctr = Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor()
        start = 4 * SEGMENT * segment
        expected = ctr.update(bytes(len(long[start : start + 4 * SEGMENT])))
        assert long[start : start + 4 * SEGMENT] == expected


def test_a_segment_reads_where_the_expansion_is():
    seed = bytes(range(32))
    whole = expand(seed, SEGMENT + 3000)
    assert np.array_equal(Expander(seed).segment(1, 3000), whole[SEGMENT:])
    assert np.array_equal(Expander(seed).segment(0), whole[:SEGMENT])


def test_a_segment_written_into_a_reused_buffer_is_the_same_values():
    seed, buffer = bytes(range(32)), scratch()
    for index, count in [(2, SEGMENT), (0, 5), (1, SEGMENT - 1)]:  # a short one after a long one, and back
        assert np.array_equal(Expander(seed).segment(index, count, buffer), Expander(seed).segment(index, count))


def test_a_shorter_keystream_is_a_prefix_across_segments():
    seed = bytes(32)
    assert keystream(seed, 4 * SEGMENT + 7)[: 4 * SEGMENT - 1] == keystream(seed, 4 * SEGMENT - 1)
