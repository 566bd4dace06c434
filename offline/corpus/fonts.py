"""What a sampled instrument set offers: its presets, its version, and whether its renderer exists.

SoundFont 2 files are read directly (the ``phdr`` preset headers and the ``INFO`` list); TiMidity++
configuration files are parsed for their ``bank``/``drumset`` sections and patch files.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from offline.corpus.config import FontConfig

DRUM_BANK = 128
"""SoundFont bank number of percussion kits."""

RENDERER_PROGRAMS = {"fluidsynth": "fluidsynth", "timidity": "timidity"}
"""Backend name -> executable it needs."""


class FontError(RuntimeError):
    """A font or its renderer is missing or unreadable; the message names the file or program."""


@dataclass(frozen=True)
class FontInventory:
    """Presets a font provides.

    presets: ``(bank, program)`` pairs; bank 128 holds drum kits.
    drum_notes: percussion keys known to sound, per kit program; ``None`` when the format
        does not list them (SoundFont kits are taken to cover the General MIDI keys 35-81).
    name: the font's own name (SoundFont ``INAM``) or the cfg file name.
    version: the format version (SoundFont ``ifil``), or ``""``.
    """

    presets: frozenset[tuple[int, int]]
    drum_notes: dict[int, frozenset[int]] | None
    name: str
    version: str

    def has_program(self, program: int) -> bool:
        """True when bank 0 has ``program``."""
        return (0, program) in self.presets

    def has_drum(self, kit: int, note: int) -> bool:
        """True when drum kit ``kit`` exists and (where the font lists keys) sounds ``note``."""
        if (DRUM_BANK, kit) not in self.presets:
            return False
        return self.drum_notes is None or note in self.drum_notes.get(kit, frozenset())


def check_font(font: FontConfig) -> None:
    """Raise ``FontError`` when the font file or its renderer program is missing."""
    if font.backend not in RENDERER_PROGRAMS:
        raise FontError(f"font {font.name!r}: unknown backend {font.backend!r} "
                        f"(expected one of {sorted(RENDERER_PROGRAMS)})")
    program = RENDERER_PROGRAMS[font.backend]
    if shutil.which(program) is None:
        raise FontError(f"font {font.name!r}: renderer '{program}' is not installed (apt-get install {program})")
    if not Path(font.path).is_file():
        raise FontError(f"font {font.name!r}: file not found: {font.path}")


def missing_requirements(fonts: Sequence[FontConfig]) -> list[str]:
    """One message per font whose file or renderer program is missing (empty when all are there)."""
    messages = []
    for font in fonts:
        try:
            check_font(font)
        except FontError as error:
            messages.append(str(error))
    return messages


def read_inventory(font: FontConfig) -> FontInventory:
    """Read the presets of ``font`` (a SoundFont 2 file or a TiMidity++ cfg)."""
    check_font(font)
    if font.backend == "fluidsynth":
        return read_sf2_inventory(Path(font.path))
    return read_timidity_inventory(Path(font.path))


def read_sf2_inventory(path: Path) -> FontInventory:
    """Parse the preset headers and the name/version of a SoundFont 2 file."""
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
            raise FontError(f"{path}: not a SoundFont 2 file")
        presets: set[tuple[int, int]] = set()
        name, version = path.name, ""
        while True:
            chunk = handle.read(12)
            if len(chunk) < 12:
                break
            chunk_id, size, list_type = chunk[:4], struct.unpack("<I", chunk[4:8])[0], chunk[8:12]
            if chunk_id != b"LIST":
                raise FontError(f"{path}: unexpected chunk {chunk_id!r}")
            if list_type == b"sdta":
                handle.seek(size - 4, 1)
                continue
            body = handle.read(size - 4)
            for sub_id, sub in _subchunks(body):
                if sub_id == b"INAM":
                    name = sub.split(b"\0", 1)[0].decode("latin-1")
                elif sub_id == b"ifil" and len(sub) >= 4:
                    major, minor = struct.unpack("<HH", sub[:4])
                    version = f"{major}.{minor:02d}"
                elif sub_id == b"phdr":
                    for offset in range(0, len(sub) - 38, 38):  # the last record is the EOP terminator
                        program, bank = struct.unpack("<HH", sub[offset + 20:offset + 24])
                        presets.add((bank, program))
    if not presets:
        raise FontError(f"{path}: no presets found")
    return FontInventory(frozenset(presets), None, name, version)


def _subchunks(body: bytes) -> list[tuple[bytes, bytes]]:
    chunks = []
    offset = 0
    while offset + 8 <= len(body):
        sub_id = body[offset:offset + 4]
        size = struct.unpack("<I", body[offset + 4:offset + 8])[0]
        chunks.append((sub_id, body[offset + 8:offset + 8 + size]))
        offset += 8 + size + (size & 1)
    return chunks


def read_timidity_inventory(path: Path) -> FontInventory:
    """Parse ``bank``/``drumset`` sections of a TiMidity++ cfg; only patches whose file exists count."""
    presets: set[tuple[int, int]] = set()
    drum_notes: dict[int, set[int]] = {}
    directories = [path.parent]
    section: tuple[str, int] | None = None
    for line_number, raw in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "dir" and len(words) > 1:
            directories.insert(0, Path(words[1]))
        elif words[0] in ("bank", "drumset") and len(words) > 1 and words[1].isdigit():
            section = (words[0], int(words[1]))
        elif words[0].isdigit() and section is not None and len(words) > 1:
            if not any((d / words[1]).is_file() for d in directories):
                continue
            number = int(words[0])
            if section[0] == "bank":
                presets.add((section[1], number))
            else:
                presets.add((DRUM_BANK, section[1]))
                drum_notes.setdefault(section[1], set()).add(number)
    if not presets:
        raise FontError(f"{path}: no patches found (is the patch set installed?)")
    return FontInventory(frozenset(presets), {k: frozenset(v) for k, v in drum_notes.items()}, path.name, "")


def font_provenance(font: FontConfig, inventory: FontInventory) -> dict[str, str]:
    """Name, format version, Debian package and version, file SHA-256 and renderer version of a font."""
    package, package_version = _debian_package(Path(font.path))
    digest = hashlib.sha256()
    with open(font.path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {
        "name": font.name,
        "backend": font.backend,
        "path": font.path,
        "split": font.split,
        "license": font.license,
        "font_name": inventory.name,
        "format_version": inventory.version,
        "package": package,
        "package_version": package_version,
        "sha256": digest.hexdigest(),
        "renderer_version": renderer_version(font.backend),
    }


def renderer_version(backend: str) -> str:
    """First line of ``fluidsynth --version`` or ``timidity --version``."""
    program = RENDERER_PROGRAMS[backend]
    result = subprocess.run([program, "--version"], capture_output=True, text=True, check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


def _debian_package(path: Path) -> tuple[str, str]:
    if shutil.which("dpkg-query") is None:
        return "", ""
    owner = subprocess.run(["dpkg-query", "-S", str(path.resolve())], capture_output=True, text=True, check=False)
    if owner.returncode != 0 or ":" not in owner.stdout:
        return "", ""
    package = owner.stdout.split(":", 1)[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, check=False)
    return package, version.stdout.strip()
