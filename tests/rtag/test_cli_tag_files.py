"""``rtag tag`` on whatever files users have: every format is tagged, every bad file is named,
the batch goes on, and a long recording does not need memory in proportion to its crops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtag.audio_io import load_audio
from rtag.model import TaggerModel
from tests.conftest import REPO_ROOT
from tests.fixtures.cli_runner import run_cli

RATE_HZ = 44100


def test_signal(rate_hz: int, seconds: float = 0.8) -> np.ndarray:
    """Two tones and a decaying click train, band-limited below 3 kHz so that every rate holds it."""
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    clicks = np.sin(2 * np.pi * 1200 * t) * np.exp(-30 * (t % 0.2))
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t) + 0.3 * clicks).astype(np.float32)


test_signal.__test__ = False  # a helper, not a test


def _write_good_files(folder: Path) -> dict[str, Path]:
    good: dict[str, Path] = {}
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        good[subtype] = folder / f"fmt_{subtype}.wav"
        sf.write(good[subtype], test_signal(RATE_HZ), RATE_HZ, subtype=subtype)
    for rate_hz in (8000, 16000, 22050, 48000, 96000, 192000):
        good[f"{rate_hz}Hz"] = folder / f"rate_{rate_hz}.wav"
        sf.write(good[f"{rate_hz}Hz"], test_signal(rate_hz), rate_hz, subtype="PCM_24")
    signal = test_signal(RATE_HZ)
    good["6ch"] = folder / "six_channels.wav"
    sf.write(good["6ch"], np.repeat(signal[:, None], 6, axis=1), RATE_HZ, subtype="FLOAT")
    good["stereo-flac"] = folder / "stereo.flac"
    sf.write(good["stereo-flac"], np.stack([signal, signal], axis=1), RATE_HZ, subtype="PCM_16")
    good["short"] = folder / "short.ogg"  # shorter than a window: zero-padded positions
    sf.write(good["short"], signal[:5000], RATE_HZ, format="OGG", subtype="VORBIS")
    # A WAV whose data chunk was cut off mid-write: libsndfile reads the frames that are there.
    cut = folder / "cut_mid_data.wav"
    sf.write(cut, signal, RATE_HZ, subtype="PCM_16")
    cut.write_bytes(cut.read_bytes()[: 44 + 2 * 20000])
    good["cut-mid-data"] = cut
    return good


def _write_bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad files and the reason each must be reported with."""
    bad: dict[str, tuple[Path, str]] = {}
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    bad["empty"] = (empty, "cannot decode audio")
    zero = folder / "zero_frames.wav"
    sf.write(zero, np.zeros(0, np.float32), RATE_HZ)
    bad["zero-frames"] = (zero, "holds no samples")
    header = folder / "cut_in_header.wav"
    sf.write(header, test_signal(RATE_HZ), RATE_HZ)
    header.write_bytes(header.read_bytes()[:30])
    bad["cut-in-header"] = (header, "cannot decode audio")
    corrupt = folder / "corrupt.flac"
    data = bytearray(folder.joinpath("stereo.flac").read_bytes())
    data[:64] = bytes(range(64))
    corrupt.write_bytes(bytes(data))
    bad["corrupt"] = (corrupt, "cannot decode audio")
    text = folder / "notes.mp3"
    text.write_text("shopping list: eggs, milk\n" * 50)
    bad["not-audio"] = (text, "cannot decode audio")
    nan = folder / "nan.wav"
    signal = test_signal(RATE_HZ)
    signal[1000] = np.nan
    signal[2000:2002] = np.inf
    sf.write(nan, signal, RATE_HZ, subtype="FLOAT")
    bad["nan-inf"] = (nan, "holds 3 NaN or infinite samples")
    bad["missing"] = (folder / "gone.wav", "file not found")
    fifo = folder / "pipe.wav"
    os.mkfifo(fifo)  # opening it would block until a writer comes: refused unopened
    bad["fifo"] = (fifo, "is not a regular file")
    return bad


def test_a_batch_of_every_format_and_every_kind_of_bad_file(
    tiny_bundle: Path, tiny_model: TaggerModel, tmp_path: Path
) -> None:
    good = _write_good_files(tmp_path)
    bad = _write_bad_files(tmp_path)
    # bad files first, in between and last: the batch must go on past each of them
    bad_paths = [path for path, _ in bad.values()]
    files = [bad_paths[0], *list(good.values())[:6], *bad_paths[1:5], *list(good.values())[6:], *bad_paths[5:]]
    # fp32, so that every format can be held to the torch model's own probabilities below
    result = run_cli(["tag", *map(str, files), "--model", str(tiny_bundle), "--format", "jsonl", "--precision", "fp32"])

    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    records = {Path(r["path"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == set(good.values())
    for name, (path, reason) in bad.items():
        assert f"rtag tag: skipped {path}: {reason}" in result.stderr, name
    assert f"{len(good)} file(s) tagged, {len(bad)} could not be read" in result.stderr

    reference = tiny_model.tag_clip(test_signal(RATE_HZ), step_samples=5120)
    for name, path in good.items():
        probabilities = [t["probability"] for t in records[path]["top"]]
        expected = tiny_model.top_k(tiny_model.tag_clip(load_audio(path), step_samples=5120), 3)
        assert [t["label"] for t in records[path]["top"]] == [label for label, _ in expected], name
        assert probabilities == pytest.approx([p for _, p in expected], abs=2e-5), name
    # Lossless formats at the model rate, and the down-mix of identical channels, give the
    # reference signal's own tags.
    for name in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE", "6ch"):
        expected = tiny_model.top_k(reference, 3)
        assert [(t["label"], t["probability"]) for t in records[good[name]]["top"]] == [
            (label, pytest.approx(p, abs=2e-4)) for label, p in expected
        ], name


MEMORY_PROBE = (
    "import resource, sys\n"
    "from rtag.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('max_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _tag_with_peak_rss_mb(path: Path, bundle: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``rtag tag PATH`` in a fresh process, with that process's peak resident memory."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, "tag", str(path), "--model", str(bundle), "--format", "jsonl"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    line = next(line for line in result.stderr.splitlines() if line.startswith("max_rss_kb"))
    return result, int(line.split()[1]) / 1024


@pytest.mark.slow
def test_a_ten_minute_file_is_tagged_in_bounded_memory(tiny_bundle: Path, tmp_path: Path) -> None:
    seconds = 600
    rng = np.random.default_rng(0)
    long_path = tmp_path / "ten_minutes.wav"
    with sf.SoundFile(long_path, "w", RATE_HZ, 1, subtype="PCM_16") as handle:
        for _ in range(seconds // 10):
            handle.write((0.1 * rng.standard_normal(10 * RATE_HZ)).astype(np.float32))
    short_path = tmp_path / "two_seconds.wav"
    sf.write(short_path, (0.1 * rng.standard_normal(2 * RATE_HZ)).astype(np.float32), RATE_HZ, subtype="PCM_16")

    short, short_rss_mb = _tag_with_peak_rss_mb(short_path, tiny_bundle)
    long, long_rss_mb = _tag_with_peak_rss_mb(long_path, tiny_bundle)
    assert short.returncode == 0 and long.returncode == 0, long.stderr
    record = json.loads(long.stdout)
    assert len(record["top"]) == 3 and record["path"] == str(long_path)
    # The clip itself is 106 MB of float32 (read, then down-mixed: twice that at the peak). Its
    # 5164 test-time inputs of 22050 samples, made all at once with their int64 crop index,
    # would add 1.4 GB; made one batch at a time they add about 8 MB.
    growth_mb = long_rss_mb - short_rss_mb
    print(f"peak RSS: 2 s file {short_rss_mb:.0f} MB, 10 min file {long_rss_mb:.0f} MB (+{growth_mb:.0f} MB)")
    assert growth_mb < 400, f"peak RSS grew by {growth_mb:.0f} MB for a 10-minute file"


def test_a_folder_is_tagged_file_by_file_in_name_order(tmp_path: Path, tiny_bundle: Path) -> None:
    (tmp_path / "music" / "live").mkdir(parents=True)
    for name in ("music/b.flac", "music/live/a.wav", "music/c.wav"):
        sf.write(tmp_path / name, test_signal(RATE_HZ), RATE_HZ)
    (tmp_path / "music" / "notes.txt").write_text("not audio")
    result = run_cli(["tag", "--model", str(tiny_bundle), "--fast", "--format", "jsonl", str(tmp_path / "music")])
    assert result.returncode == 0, result.stderr
    paths = [json.loads(line)["path"] for line in result.stdout.splitlines()]
    assert paths == [str(tmp_path / "music" / name) for name in ("b.flac", "c.wav", "live/a.wav")]
    (tmp_path / "empty").mkdir()
    refused = run_cli(["tag", "--model", str(tiny_bundle), str(tmp_path / "empty")])
    assert refused.returncode == 2 and f"no audio files in {tmp_path / 'empty'}" in refused.stderr
