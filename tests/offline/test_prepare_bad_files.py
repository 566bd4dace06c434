"""``python -m offline prepare`` on a manifest of whatever files users have: good ones of every
format are cached at 44.1 kHz mono, bad ones are reported by name and skipped, the exit code says so."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from offline.preprocess import load_index
from tiny_fsd import REPO_ROOT, TINY_CONFIG


def _tone(rate_hz: int, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_prepare_caches_every_format_and_names_every_bad_file(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    good = {
        "u8.wav": (_tone(44100), 44100, "PCM_U8"),
        "int24_8k.wav": (_tone(8000), 8000, "PCM_24"),
        "int32_192k.wav": (_tone(192000), 192000, "PCM_32"),
        "float_48k.wav": (_tone(48000), 48000, "FLOAT"),
        "quad.flac": (np.repeat(_tone(44100)[:, None], 4, axis=1), 44100, "PCM_16"),
    }
    for name, (audio, rate_hz, subtype) in good.items():
        sf.write(clips / name, audio, rate_hz, subtype=subtype)
    (clips / "empty.wav").write_bytes(b"")
    sf.write(clips / "zero.wav", np.zeros(0, np.float32), 44100)
    (clips / "text.wav").write_text("not audio\n" * 20)
    nan = _tone(44100)
    nan[5] = np.nan
    sf.write(clips / "nan.wav", nan, 44100, subtype="FLOAT")
    os.mkfifo(clips / "fifo.wav")  # would block the reader forever if it were opened
    bad = {"empty.wav": "cannot decode audio", "zero.wav": "holds no samples", "text.wav": "cannot decode audio",
           "nan.wav": "holds 1 NaN or infinite samples", "missing.wav": "file not found",
           "fifo.wav": "is not a regular file"}
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("path", "label"))
        for i, name in enumerate([*good, *bad]):
            writer.writerow((f"clips/{name}", "a" if i % 2 else "b"))

    command = [sys.executable, "-m", "offline", "prepare", str(TINY_CONFIG), "--set", f"data.root={manifest}",
               "--set", f"data.cache_dir={tmp_path / 'cache'}", "--set", f"run_dir={tmp_path / 'run'}"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"prepared {len(good)} clips" in result.stdout and f"skipped {len(bad)} unreadable clips" in result.stdout
    for name, reason in bad.items():
        assert f"{clips / name}: {reason}" in result.stderr, name
    with open(tmp_path / "cache" / "skipped.csv") as handle:
        assert {row["clip_id"] for row in csv.DictReader(handle)} == {f"clips__{name}" for name in bad}
    cached = load_index(tmp_path / "cache")
    assert {clip.clip_id for clip in cached} == {f"clips__{name}" for name in good}
    for clip in cached:
        audio = clip.load()
        assert audio.dtype == np.float32 and audio.ndim == 1 and np.all(np.isfinite(audio))
        # resampled to 44.1 kHz and down-mixed: the 0.6 s tone is 26460 samples (nothing to trim)
        assert abs(clip.raw_samples - 26460) <= 1 and abs(audio.shape[0] - 26460) <= 1024, clip.clip_id
        assert np.abs(audio).max() > 0.45
    # a second run reuses the cache and still reports the bad files
    again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 1 and f"reused {len(good)} from the cache" in again.stdout
