"""The speech-commands keyword spotter as TensorFlow's tutorial froze it (speech_commands/
freeze.py with models.create_conv_model): a scalar string placeholder holding a WAV file,
DecodeWav to one channel of a fixed length, AudioSpectrogram, Mfcc, then the tutorial's
two-layer conv net on the fingerprint and a softmax over the labels."""

import io
import wave

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

SAMPLE_RATE = 16000
DESIRED_SAMPLES = 8000  # clip_duration_ms=500
WINDOW, STRIDE = 480, 160  # window_size_ms=30, window_stride_ms=10
DCT = 40  # feature_bin_count
LABELS = 12  # silence, unknown and ten words
TIME = 1 + (DESIRED_SAMPLES - WINDOW) // STRIDE


def build():
    wav_data = v1.placeholder(tf.string, [], name="wav_data")
    decoded = tf.audio.decode_wav(
        wav_data, desired_channels=1, desired_samples=DESIRED_SAMPLES, name="decoded_sample_data"
    )
    spectrogram = tf.raw_ops.AudioSpectrogram(
        input=decoded.audio, window_size=WINDOW, stride=STRIDE, magnitude_squared=True
    )
    fingerprint = tf.raw_ops.Mfcc(
        spectrogram=spectrogram, sample_rate=decoded.sample_rate, dct_coefficient_count=DCT
    )
    reshaped = tf.reshape(fingerprint, [-1, TIME * DCT])
    fingerprint_4d = tf.reshape(reshaped, [-1, TIME, DCT, 1])
    first_weights = v1.get_variable("first_weights", [20, 8, 1, 16])
    first_bias = v1.get_variable("first_bias", [16])
    first_conv = tf.nn.conv2d(fingerprint_4d, first_weights, [1, 1, 1, 1], "SAME") + first_bias
    first_relu = tf.nn.relu(first_conv)
    max_pool = tf.nn.max_pool2d(first_relu, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
    second_weights = v1.get_variable("second_weights", [10, 4, 16, 16])
    second_bias = v1.get_variable("second_bias", [16])
    second_conv = tf.nn.conv2d(max_pool, second_weights, [1, 1, 1, 1], "SAME") + second_bias
    second_relu = tf.nn.relu(second_conv)
    _, height, width, channels = second_relu.get_shape().as_list()
    flattened = tf.reshape(second_relu, [-1, height * width * channels])
    final_fc_weights = v1.get_variable("final_fc_weights", [height * width * channels, LABELS])
    final_fc_bias = v1.get_variable("final_fc_bias", [LABELS])
    logits = tf.matmul(flattened, final_fc_weights) + final_fc_bias
    tf.nn.softmax(logits, name="labels_softmax")
    return ["wav_data:0"], ["labels_softmax:0"]


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit PCM WAV file, as `wave` writes it."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, "<i2").tobytes())
    return buffer.getvalue()


def feeds(rng):
    """A spoken-word-like chirp shorter than the clip (DecodeWav pads it to 8000 samples)."""
    t = np.arange(6400) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * (300 + 900 * t) * t) * np.hanning(t.size)
    noise = rng.normal(0, 0.05, t.size)
    return [np.asarray(wav_bytes((tone * 0.6 + noise) * 20000), object)]


TENSORFLOW_ONLY = {"DecodeWav", "AudioSpectrogram", "Mfcc"}
