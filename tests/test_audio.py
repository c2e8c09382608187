"""Audio loading: resampling, downmixing and every kind of bad file (issue section 6)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from slimaudio.audio import AudioChecks, BadAudio, load_audio, peak_dbfs, resample, to_int16
from slimaudio.errors import BadAudioError

SR = 16000


def tone(freq: float, dur: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(dur * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 12345])
def test_resamples_any_rate_to_the_pipeline_rate(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, tone(440.0, 1.0, rate), rate)
    x = load_audio(path, SR)
    assert x.dtype == np.float32
    assert abs(x.size - SR) <= 1
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    peak_hz = np.argmax(spec) * SR / x.size
    assert abs(peak_hz - 440.0) < 3.0


def test_downmixes_stereo_to_mono(tmp_path):
    left, right = tone(300, 0.5, SR, 0.4), tone(300, 0.5, SR, 0.2)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), SR)
    x = load_audio(path, SR)
    assert x.ndim == 1
    np.testing.assert_allclose(x, (left + right) / 2, atol=2e-4)


def _write_bad(tmp_path, kind: str):
    """Write one bad file of the given kind; return its path."""
    if kind == "corrupt":
        p = tmp_path / "corrupt.wav"
        p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a wave file")
    elif kind == "unsupported":
        p = tmp_path / "clip.mp4"
        p.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    elif kind == "empty":
        p = tmp_path / "empty.wav"
        sf.write(p, np.zeros(0, dtype=np.float32), SR)
    elif kind == "silent":
        p = tmp_path / "silent.wav"
        sf.write(p, np.zeros(SR, dtype=np.float32), SR)
    elif kind == "near_silent":
        p = tmp_path / "near_silent.wav"
        sf.write(p, tone(200, 1.0, SR, amp=1e-4), SR, subtype="FLOAT")
    elif kind == "nan":
        p = tmp_path / "nan.wav"
        x = tone(200, 1.0, SR)
        x[100:110] = np.nan
        x[500] = np.inf
        sf.write(p, x, SR, subtype="FLOAT")
    elif kind == "short":
        p = tmp_path / "short.wav"
        sf.write(p, tone(200, 0.05, SR), SR)
    elif kind == "odd_rate":
        p = tmp_path / "odd_rate.wav"
        sf.write(p, tone(100, 1.0, 1000), 1000)
    else:
        raise AssertionError(kind)
    return p


CASES = {
    "corrupt": ("corrupt", "cannot read audio (Error in WAV"),
    "unsupported": ("unsupported_format", "unsupported format '.mp4'"),
    "empty": ("empty", "no audio samples"),
    "silent": ("silent", "all-silent"),
    "near_silent": ("silent", "-80.0 dBFS"),
    "nan": ("non_finite", "11 NaN/inf sample(s)"),
    "short": ("too_short", "too short (0.050 s < minimum 0.5 s)"),
    "odd_rate": ("bad_sample_rate", "sample rate 1000 Hz"),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_bad_file_gives_one_line_naming_the_file(tmp_path, kind):
    path = _write_bad(tmp_path, kind)
    reason, text = CASES[kind]
    with pytest.raises(BadAudioError) as info:
        load_audio(path, SR, AudioChecks(silence_dbfs=-60.0, min_duration_s=0.5))
    msg = str(info.value)
    assert isinstance(info.value, BadAudio) and info.value.reason == reason
    assert msg.startswith(str(path)), msg
    assert text in msg, msg
    assert "\n" not in msg


def test_silence_threshold_is_a_parameter(tmp_path):
    path = _write_bad(tmp_path, "near_silent")  # peak -80 dBFS
    x = load_audio(path, SR, AudioChecks(silence_dbfs=-90.0))
    assert peak_dbfs(x) == pytest.approx(-80.0, abs=0.5)


def test_bad_audio_pickles_for_worker_processes():
    import pickle

    exc = BadAudio("a/b.wav", "silent", "all-silent")
    back = pickle.loads(pickle.dumps(exc))
    assert (str(back), back.reason) == (str(exc), "silent")


def test_int16_round_trip_and_resample_identity():
    x = tone(440, 0.1, SR)
    assert resample(x, SR, SR) is x
    y = to_int16(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    assert y.tolist() == [-32768, -32767, 0, 32767, 32767]


# --- what libsndfile's bare "System error." hides -------------------------------------------

def _access_case(tmp_path, kind: str):
    if kind == "missing":
        return tmp_path / "gone.wav"
    p = tmp_path / f"{kind}.wav"
    if kind == "dangling_symlink":
        p.symlink_to(tmp_path / "nowhere.wav")
    elif kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)  # decoding it would block: refused before libsndfile sees it
    return p


ACCESS = {"missing": ("missing", "no such file"),
          "dangling_symlink": ("unreadable", "dangling symlink (to "),
          "directory": ("unreadable", "not a regular file (a directory)"),
          "fifo": ("unreadable", "not a regular file (a special file)")}


@pytest.mark.parametrize("kind", sorted(ACCESS))
def test_missing_or_unopenable_file_says_what_happened(tmp_path, kind):
    path = _access_case(tmp_path, kind)
    with pytest.raises(BadAudio) as info:
        load_audio(path, SR)
    reason, text = ACCESS[kind]
    assert info.value.reason == reason
    assert str(info.value) == f"{path}: {info.value.detail}" and text in str(info.value)
    assert "System error" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_unreadable(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, tone(300, 0.5, SR), SR)
    path.chmod(0)
    with pytest.raises(BadAudio) as info:
        load_audio(path, SR)
    assert info.value.reason == "unreadable" and "Permission denied" in str(info.value)


def test_corrupt_content_gives_the_decoders_message_once(tmp_path):
    path = _write_bad(tmp_path, "corrupt")
    with pytest.raises(BadAudio) as info:
        load_audio(path, SR)
    assert info.value.reason == "corrupt"
    # the decoder's words, without libsndfile's "Error opening '<path>':" repeating the path
    assert str(info.value).count(str(path)) == 1 and "Error in WAV" in info.value.detail
