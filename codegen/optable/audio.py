"""Audio front-end ops (tf.audio and the speech-commands ops): decoding a WAV file, its
spectrogram and MFCCs. No Keras layer or keras.ops function computes them, so they run in
TensorFlow-only layers, which need their output shapes from here to build.
"""

from __future__ import annotations

from .record import op


def _decode_wav(node, ins, c):
    """(samples, channels) and the sample rate: fixed where desired_samples and
    desired_channels fix them, else only known when the file is read."""
    samples, channels = node.attrs.get("desired_samples", -1), node.attrs.get(
        "desired_channels", -1
    )
    audio = (samples if samples > 0 else None, channels if channels > 0 else None)
    return [audio, ()]


def _spectrogram(node, ins, c):
    """(channels, frames, bins): a frame per stride that a whole window fits in, and half of
    the FFT (the window's length rounded up to a power of two) plus one bins."""
    shape = ins[0]
    if shape is None or len(shape) != 2:
        return None
    samples, channels = shape
    window, stride = node.attrs.get("window_size"), node.attrs.get("stride")
    if not isinstance(window, int) or not isinstance(stride, int) or window < 1 or stride < 1:
        return None
    frames = None
    if samples is not None:
        frames = 1 + (samples - window) // stride if samples >= window else 0
    fft = 1 << (window - 1).bit_length()
    return (channels, frames, fft // 2 + 1)


def _mfcc(node, ins, c):
    shape = ins[0]
    if shape is None or len(shape) != 3:
        return None
    return (*shape[:2], node.attrs.get("dct_coefficient_count", 13))


op("DecodeWav", shape=lambda node, ins, c: _decode_wav(node, ins, c)[0], shapes=_decode_wav)
op("AudioSpectrogram", shape=_spectrogram)
op("Mfcc", shape=_mfcc)
