"""Turn a ``Performance`` into audio: a MIDI file written with mido, rendered offline by
fluidsynth (SoundFont 2) or TiMidity++ (GUS patch sets). No audio device is opened.

Built-in reverb and chorus of both renderers are switched off; fluidsynth's dynamic sample loading
stays off, because with it the first notes of a render may sound before their samples are loaded
(renders then differ from run to run); room and level are applied
afterwards by ``offline.effects`` so they are the same for every font.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from offline.corpus.config import FontConfig
from offline.corpus.patterns import Performance

TICKS_PER_BEAT = 960
TEMPO_US_PER_BEAT = 500_000
"""Fixed MIDI clock: 120 bpm, so one tick is about 0.52 ms. Musical tempo lives in the note times."""


class RenderError(RuntimeError):
    """The renderer failed or produced no sound; the message names the font, program and command."""


def write_midi(performance: Performance, path: Path) -> None:
    """Write ``performance`` as a type-0 MIDI file at ``path``.

    The file selects the program (or drum kit) on the performance's channel, plays the notes,
    and sends All Sound Off at ``length_s`` so nothing sounds past the clip.
    """
    seconds_per_tick = TEMPO_US_PER_BEAT / 1e6 / TICKS_PER_BEAT
    timed: list[tuple[int, int, mido.Message]] = []  # (tick, order, message); note-offs sort first
    for note in performance.notes:
        start = round(note.start_s / seconds_per_tick)
        stop = max(start + 1, round((note.start_s + note.duration_s) / seconds_per_tick))
        timed.append((start, 1, mido.Message("note_on", channel=performance.channel, note=note.note,
                                             velocity=note.velocity)))
        timed.append((stop, 0, mido.Message("note_off", channel=performance.channel, note=note.note,
                                            velocity=0)))
    end = round(performance.length_s / seconds_per_tick)
    timed.append((end, 2, mido.Message("control_change", channel=performance.channel, control=120, value=0)))
    timed.sort(key=lambda item: (item[0], item[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US_PER_BEAT, time=0))
    track.append(mido.Message("program_change", channel=performance.channel, program=performance.program, time=0))
    previous = 0
    for tick, _, message in timed:
        track.append(message.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(str(path))


def render_command(font: FontConfig, midi_path: Path, wav_path: Path, sample_rate_hz: int) -> list[str]:
    """The renderer command line that turns ``midi_path`` into ``wav_path`` with ``font``."""
    if font.backend == "fluidsynth":
        return ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate_hz),
                "-o", "audio.file.format=float", "-F", str(wav_path), font.path, str(midi_path)]
    if font.backend == "timidity":
        return ["timidity", "-c", font.path, "-Ow", "--output-mono", "--output-24bit", "-s", str(sample_rate_hz),
                "-EFreverb=0", "-EFchorus=0", "-idq", "-o", str(wav_path), str(midi_path)]
    raise RenderError(f"font {font.name!r}: unknown backend {font.backend!r}")


def render(performance: Performance, font: FontConfig, sample_rate_hz: int) -> np.ndarray:
    """Render ``performance`` with ``font``; return float32 mono of exactly ``length_s`` seconds.

    Stereo output is averaged to mono. A render shorter than the clip is padded with zeros.
    Raises ``RenderError`` when the renderer fails or the result is silent.
    """
    length_samples = round(performance.length_s * sample_rate_hz)
    with tempfile.TemporaryDirectory(prefix="rtag-corpus-") as tmp:
        midi_path, wav_path = Path(tmp) / "clip.mid", Path(tmp) / "clip.wav"
        write_midi(performance, midi_path)
        command = render_command(font, midi_path, wav_path, sample_rate_hz)
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp)
        if result.returncode != 0 or not wav_path.is_file():
            raise RenderError(f"font {font.name!r} program {performance.program}: '{' '.join(command)}' "
                              f"failed with code {result.returncode}: {result.stderr.strip()[-500:]}")
        audio, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
    if rate != sample_rate_hz:
        raise RenderError(f"font {font.name!r}: renderer wrote {rate} Hz, asked for {sample_rate_hz} Hz")
    mono = audio.mean(axis=1)[:length_samples]
    if mono.size < length_samples:
        mono = np.pad(mono, (0, length_samples - mono.size))
    if not np.any(np.abs(mono) > 1e-5):
        raise RenderError(f"font {font.name!r} program {performance.program} channel {performance.channel}: "
                          f"silent render of notes {[n.note for n in performance.notes][:8]}")
    return mono.astype(np.float32)
