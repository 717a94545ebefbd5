"""Tensors on the wire: the bytes, their parts, and the checks a receiver makes."""

from __future__ import annotations

import numpy as np
import pytest

from fedge.shared import codec

TENSORS = [
    np.arange(6, dtype=np.float32).reshape(2, 3),
    np.zeros(0, np.float32),
    np.array([1.5, -2.0], dtype=">f4"),  # big-endian: travels little-endian
    np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # strided
]
SPECS = [
    codec.Spec("a", "float32", (2, 3)),
    codec.Spec("b", "float32", (0,)),
    codec.Spec("c", "float32", (2,)),
    codec.Spec("d", "float32", (3, 2)),
]


def test_the_parts_join_into_the_encoded_bytes():
    parts = codec.encode_parts(TENSORS)
    assert b"".join(parts) == codec.encode(TENSORS)
    assert [p.nbytes for p in parts] == [24, 0, 8, 24]
    assert codec.nbytes(parts) == codec.nbytes(codec.encode(TENSORS)) == 56


def test_a_little_endian_contiguous_tensor_is_not_copied():
    tensor = np.ones(4, np.float32)
    (part,) = codec.encode_parts([tensor])
    tensor[0] = 7.0
    assert np.frombuffer(part, np.float32)[0] == 7.0


@pytest.mark.parametrize("form", ["bytes", "parts", "one part"])
def test_decoding_the_bytes_or_their_parts_gives_the_same_tensors(form):
    data = {
        "bytes": codec.encode(TENSORS),
        "parts": codec.encode_parts(TENSORS),
        "one part": [codec.encode(TENSORS)],  # not one part per tensor: joined, then cut
    }[form]
    for got, want in zip(codec.decode(SPECS, data), TENSORS, strict=True):
        assert got.dtype == np.dtype("<f4") and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_bytes_of_the_wrong_length_are_refused_whole_or_in_parts():
    data = codec.encode(TENSORS)
    with pytest.raises(codec.CodecError, match="expected 56 bytes for 4 tensors, got 52"):
        codec.decode(SPECS, data[:-4])
    with pytest.raises(codec.CodecError, match="expected 56 bytes for 4 tensors, got 60"):
        codec.decode(SPECS, [*codec.encode_parts(TENSORS), bytes(4)])


def test_an_assembler_refuses_overflow_at_once_and_truncation_at_the_end():
    assembler = codec.Assembler(8)
    assembler.add(b"abcd")
    with pytest.raises(codec.CodecError, match="expected 8 bytes in all, got more"):
        assembler.add(b"efghi")
    with pytest.raises(codec.CodecError, match="expected 8 bytes, got 4: the upload was truncated"):
        assembler.finish()
    assembler.add(b"efgh")
    assert assembler.finish() == b"abcdefgh"


def test_non_finite_values_are_refused_naming_the_tensor():
    bad = [np.zeros(3, np.float32), np.array([0.0, np.inf], np.float32)]
    with pytest.raises(codec.CodecError, match="tensor 'second' contains NaN or Inf"):
        codec.check_finite(bad, ["first", "second"])
