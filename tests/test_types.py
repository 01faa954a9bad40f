"""TensorRT's value types: DataType, Dims, Weights, enums and module aliases."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt


def test_datatype_values_and_aliases_match_tensorrt():
    expected = {
        "FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5,
        "FP8": 6, "BF16": 7, "INT64": 8, "INT4": 9, "FP4": 10, "E8M0": 11,
    }  # fmt: skip
    assert {name: int(trt.DataType[name]) for name in expected} == expected
    assert all(int(t) >= 64 for t in trt.DataType if t.name not in expected)  # extensions
    assert trt.float32 is trt.DataType.FLOAT
    assert trt.float16 is trt.DataType.HALF
    assert trt.bfloat16 is trt.DataType.BF16
    assert trt.int64 is trt.DataType.INT64
    assert trt.bool is trt.DataType.BOOL
    assert trt.fp8 is trt.DataType.FP8


@pytest.mark.parametrize(
    ("dtype", "size", "numpy_type"),
    [
        (trt.float32, 4, np.float32),
        (trt.float16, 2, np.float16),
        (trt.int8, 1, np.int8),
        (trt.int32, 4, np.int32),
        (trt.int64, 8, np.int64),
        (trt.bool, 1, np.bool_),
        (trt.uint8, 1, np.uint8),
    ],
)
def test_itemsize_and_nptype(dtype, size, numpy_type):
    assert dtype.itemsize == size
    assert trt.nptype(dtype) is numpy_type


def test_itemsize_of_narrow_types_and_nptype_without_numpy_equivalent():
    assert trt.bfloat16.itemsize == 2
    assert trt.fp8.itemsize == 1
    assert trt.int4.itemsize == 0.5
    with pytest.raises(TypeError):
        trt.nptype(trt.bfloat16)


def test_dims_behave_like_tuples():
    dims = trt.Dims([1, 3, 224, 224])
    assert len(dims) == 4
    assert dims == (1, 3, 224, 224)
    assert dims == [1, 3, 224, 224]
    assert dims[1:3] == (3, 224)
    dims[0] = 8
    assert tuple(dims) == (8, 3, 224, 224)
    assert repr(trt.Dims([5])) == "(5,)"
    assert trt.Dims2(2, 3) == (2, 3)
    assert trt.Dims3([1, 2, 3]) == (1, 2, 3)
    assert trt.Dims4(1, 2, 3, 4) == (1, 2, 3, 4)
    hw = trt.DimsHW(7, 9)
    assert (hw.h, hw.w) == (7, 9)
    with pytest.raises(ValueError):
        trt.Dims2(1, 2, 3)
    with pytest.raises(ValueError):
        trt.Dims(range(9))


def test_weights_hold_numpy_arrays_without_copying():
    array = np.arange(6, dtype=np.float32)
    weights = trt.Weights(array)
    assert weights.dtype == trt.float32
    assert weights.size == 6 and len(weights) == 6
    assert weights.nbytes == 24
    assert np.shares_memory(weights.numpy(), array)
    empty = trt.Weights(trt.float16)
    assert empty.size == 0 and empty.dtype == trt.float16
    pointer = trt.Weights(trt.int32, np.arange(3, dtype=np.int32).ctypes.data, 3)
    assert pointer.size == 3


def test_flag_enums_are_bit_positions():
    assert int(trt.TempfileControlFlag.ALLOW_IN_MEMORY_FILES) == 0
    assert int(trt.TempfileControlFlag.ALLOW_TEMPORARY_FILES) == 1
    flags = 0
    flags |= 1 << int(trt.TempfileControlFlag.ALLOW_TEMPORARY_FILES)
    assert flags == 2
    assert int(trt.BuilderFlag.FP16) == 0
    assert int(trt.BuilderFlag.VERSION_COMPATIBLE) == 13
    assert int(trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME) == 14
    assert int(trt.BuilderFlag.BF16) == 17


def test_error_codes_match_tensorrt():
    assert [(c.name, int(c)) for c in trt.ErrorCodeTRT] == [
        ("SUCCESS", 0),
        ("UNSPECIFIED_ERROR", 1),
        ("INTERNAL_ERROR", 2),
        ("INVALID_ARGUMENT", 3),
        ("INVALID_CONFIG", 4),
        ("FAILED_ALLOCATION", 5),
        ("FAILED_INITIALIZATION", 6),
        ("FAILED_EXECUTION", 7),
        ("FAILED_COMPUTATION", 8),
        ("INVALID_STATE", 9),
        ("UNSUPPORTED_STATE", 10),
    ]


def test_volume():
    assert trt.volume((2, 3, 4)) == 24
    assert trt.volume(()) == 1
