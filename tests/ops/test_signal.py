"""DFT and STFT extension layers, built into plans and run, against numpy's FFT."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of

RNG = np.random.default_rng(5)


def as_complex(x: np.ndarray) -> np.ndarray:
    """[..., 1] or [..., 2] real tensors as numpy complex arrays."""
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(np.complex128)


def as_real(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1)


def constant(network, value: int):
    return network.add_constant((), trt.Weights(np.array(value, np.int64))).get_output(0)


def dft_network(x: np.ndarray, axis: int, length: int | None = None, **properties):
    def define(network):
        inp = network.add_input("x", dtype_of(x), x.shape)
        layer = network.add_dft(inp, axis, **properties)
        if length is not None:
            layer.set_input(1, constant(network, length))
        out = layer.get_output(0)
        out.name = "y"
        network.mark_output(out)

    return define


@pytest.mark.parametrize("axis", [1, 2, -2])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [None, 5, 12])
def test_forward_dft(axis, channels, length):
    x = RNG.standard_normal((2, 8, 6, channels)).astype(np.float32)
    out = build_and_run(dft_network(x, axis, length), {"x": x})["y"]
    expected = as_real(np.fft.fft(as_complex(x), n=length, axis=axis % 4))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [None, 6])
def test_onesided_forward_dft(length):
    x = RNG.standard_normal((3, 10, 1)).astype(np.float32)
    out = build_and_run(dft_network(x, 1, length, onesided=True), {"x": x})["y"]
    expected = as_real(np.fft.rfft(x[..., 0], n=length, axis=1))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_inverse_dft():
    x = RNG.standard_normal((2, 7, 3, 2)).astype(np.float32)
    out = build_and_run(dft_network(x, 1, inverse=True), {"x": x})["y"]
    expected = as_real(np.fft.ifft(as_complex(x), axis=1))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [None, 9])
def test_inverse_onesided_dft_gives_a_real_signal(length):
    x = RNG.standard_normal((2, 5, 2)).astype(np.float32)
    out = build_and_run(dft_network(x, 1, length, inverse=True, onesided=True), {"x": x})["y"]
    expected = np.fft.irfft(as_complex(x), n=length, axis=1)[..., None]
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_half_dft():
    x = RNG.standard_normal((1, 8, 1)).astype(np.float16)
    out = build_and_run(dft_network(x, 1), {"x": x})["y"]
    assert out.dtype == np.float16
    expected = as_real(np.fft.fft(x[..., 0].astype(np.float64), axis=1))
    np.testing.assert_allclose(out, expected, rtol=1e-2, atol=1e-2)


def test_dft_defaults_and_dynamic_shape():
    def define(network):
        inp = network.add_input("x", trt.float32, (-1, -1, 2))
        layer = network.add_dft(inp, 1)
        assert isinstance(layer, trt.IDFTLayer) and layer.type == trt.LayerType.PLUGIN
        assert (layer.inverse, layer.onesided) == (False, False)
        out = layer.get_output(0)
        assert tuple(out.shape) == (-1, -1, 2)
        out.name = "y"
        network.mark_output(out)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 1, 2), (2, 4, 2), (4, 16, 2))
        config.add_optimization_profile(profile)

    x = RNG.standard_normal((3, 11, 2)).astype(np.float32)
    out = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_allclose(out, as_real(np.fft.fft(as_complex(x), axis=1)), atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "axis", "message"),
    [
        ((4, 2), 1, "trailing (real, imaginary) dim"),
        ((4, 3), 0, "end in a dim of 1 (real) or 2"),
        ((4, 2), 2, "out of range"),
    ],
)
def test_invalid_dft_fails_to_build(logger, shape, axis, message):
    x = np.zeros(shape, np.float32)
    assert build_plan(dft_network(x, axis), logger) is None
    assert any(message in m and "[Plugin]" in m for m in logger.errors)


def stft_network(signal, step, window=None, length=None, onesided=True):
    def define(network):
        inp = network.add_input("signal", dtype_of(signal), signal.shape)
        layer = network.add_stft(inp, constant(network, step), onesided=onesided)
        if window is not None:
            weights = network.add_constant(window.shape, trt.Weights(window)).get_output(0)
            layer.set_input(2, weights)
        if length is not None:
            layer.set_input(3, constant(network, length))
        out = layer.get_output(0)
        out.name = "y"
        network.mark_output(out)

    return define


def stft_reference(signal, step, length, window, onesided):
    z = as_complex(signal)
    count = 1 + (z.shape[1] - length) // step
    frames = np.stack([z[:, i * step : i * step + length] for i in range(count)], axis=1)
    spectrum = np.fft.fft(frames * window, axis=-1)
    return as_real(spectrum[..., : length // 2 + 1] if onesided else spectrum)


@pytest.mark.parametrize("onesided", [True, False])
@pytest.mark.parametrize("with_window", [True, False])
@pytest.mark.parametrize("channels", [1, 2])
def test_stft(onesided, with_window, channels):
    signal = RNG.standard_normal((2, 64, channels)).astype(np.float32)
    window = (0.5 + 0.5 * np.cos(2 * np.pi * np.arange(16) / 16)).astype(np.float32)
    define = stft_network(
        signal, 8, window if with_window else None, None if with_window else 16, onesided
    )
    out = build_and_run(define, {"signal": signal})["y"]
    expected = stft_reference(signal, 8, 16, window if with_window else 1.0, onesided)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_stft_without_frame_length_or_window_takes_the_whole_signal():
    signal = RNG.standard_normal((1, 10, 1)).astype(np.float32)
    out = build_and_run(stft_network(signal, 3), {"signal": signal})["y"]
    np.testing.assert_allclose(out, stft_reference(signal, 3, 10, 1.0, True), atol=1e-4)


def test_stft_window_and_frame_length_must_agree(logger):
    signal = np.zeros((1, 32, 1), np.float32)
    define = stft_network(signal, 4, np.ones(8, np.float32), 16)
    assert build_plan(define, logger) is None
    assert any("the window has 8 values, frame_length is 16" in m for m in logger.errors)
