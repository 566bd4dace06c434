"""Real clips get a recording-group id (the manifest's ``group``, else a source rule), and the
split moves whole groups: none on both sides."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from offline.corpus.real import (
    RealClip,
    drop_scarce_labels,
    read_real_manifest,
    recording_source,
    split_real_clips,
)


def test_recording_source_uses_uploader_microphone_and_kit() -> None:
    assert recording_source("esc50", "clips/esc50_4-182395-A-0.flac", "", "pgonsilva") == "esc50/pgonsilva"
    assert recording_source("esc50", "clips/esc50_4-182395-A-0.flac", "") == "esc50/182395"
    assert recording_source("weresax", "clips/weresax_x.flac",
                            "sfzinstruments+karoryfer.weresax:Samples/alto/db2_f_rr1_cnd.wav") == "weresax/cnd"
    assert recording_source("drum-samples", "clips/d.flac", "Tonejs+audio:drum-samples/Kit3/kick.mp3") \
        == "drum-samples/Kit3"
    assert recording_source("jrhodes", "clips/jrhodes_x.flac", "anything") == "jrhodes"


def _clips(spec: list[tuple[str, str, int]]) -> list[RealClip]:
    clips = []
    for source, label, count in spec:
        for i in range(count):
            clips.append(RealClip(Path(f"/r/{source}_{label}_{i}.flac"), label, "strong", source, "CC0"))
    return clips


def test_split_reaches_the_target_share_with_whole_sources() -> None:
    clips = _clips([(f"esc50/{i}", "Bark", 1) for i in range(10)] + [("weresax/cnd", "Saxophone", 32),
                                                                        ("weresax/dnm", "Saxophone", 32),
                                                                        ("jrhodes", "Electric_piano", 40)])
    splits = split_real_clips(clips, 0.3, seed=0)
    held = Counter(clip.label for clip in clips if splits[clip.path] == "heldout")
    assert held["Bark"] == 3
    assert held["Saxophone"] == 32  # one microphone of two
    assert held["Electric_piano"] == 0  # a single source stays in training


def test_labels_forced_to_heldout_take_their_sources_along() -> None:
    clips = _clips([("esc50/1", "_other", 2), ("esc50/1", "Bark", 1), ("esc50/2", "Bark", 1), ("esc50/3", "Bark", 1)])
    splits = split_real_clips(clips, 0.0, seed=0, all_heldout_labels=frozenset({"_other"}))
    assert {splits[c.path] for c in clips if c.source == "esc50/1"} == {"heldout"}
    assert {splits[c.path] for c in clips if c.source != "esc50/1"} == {"train"}


@settings(max_examples=60, deadline=None)
@given(spec=st.lists(st.tuples(st.integers(0, 12), st.sampled_from(["A", "B", "C"]), st.integers(1, 5)),
                     min_size=1, max_size=30),
       fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_no_source_on_both_sides_and_every_multi_source_label_keeps_training_data(spec, fraction, seed) -> None:
    unique = {(source, label): count for source, label, count in spec}
    clips = _clips([(f"s{source}", label, count) for (source, label), count in unique.items()])
    splits = split_real_clips(clips, fraction, seed)
    sides: dict[str, set[str]] = {}
    for clip in clips:
        sides.setdefault(clip.source, set()).add(splits[clip.path])
    assert all(len(s) == 1 for s in sides.values())
    for label in {clip.label for clip in clips}:
        assert any(splits[c.path] == "train" for c in clips if c.label == label)


def test_the_shared_real_manifest_reads_with_group_ids(real_data: Path) -> None:
    repeats: list[str] = []
    clips = read_real_manifest(real_data, repeats)
    with open(real_data / "manifest.csv", newline="") as handle:
        paths = [row.split(",", 1)[0] for row in list(handle)[1:]]
    assert len(paths) == 6015
    assert len(clips) == len(set(paths)) and len(repeats) == len(paths) - len(set(paths))  # a repeat is read once
    sources = Counter(clip.source.split("/")[0] for clip in clips)
    assert sources["esc50"] == 161 and sources["weresax"] == 64
    # the second part's groups come from the manifest: one UrbanSound8K recording, one kit, ...
    assert {clip.source for clip in clips if clip.path.name == "125791-3-0-15.ogg"} == {"us8k/125791"}
    assert len({clip.source for clip in clips if clip.source.startswith("covid19-cough")}) == 1058
    assert len({clip.source for clip in clips if clip.label == "Bark"}) > 80
    assert {clip.source for clip in clips if clip.label == "Saxophone"} == {"weresax/cnd", "weresax/dnm",
                                                                        "philharmonia/saxophone"}
    # two Fireworks recordings (Freesound 119647, 119648) share an uploader, so one source
    assert {clip.source for clip in clips if clip.label == "Fireworks"} == {"esc50/ramagochi"}
    assert not any(clip.source[len("esc50/"):].isdigit() for clip in clips if clip.source.startswith("esc50/"))


def test_the_real_split_of_the_shared_folder_is_group_disjoint_and_keeps_single_group_labels_in_training(
        real_data: Path) -> None:
    clips = read_real_manifest(real_data)
    splits = split_real_clips(clips, 0.3, seed=2018)
    sides: dict[str, set[str]] = {}
    for clip in clips:
        sides.setdefault(clip.source, set()).add(splits[clip.path])
    assert all(len(side) == 1 for side in sides.values())
    held = Counter(clip.label for clip in clips if splits[clip.path] == "heldout")
    assert held["Oboe"] == held["Double_bass"] == 0  # one Philharmonia player each: all in training
    assert 0.2 < held["Cough"] / 1066 < 0.4 and 0.2 < held["Bark"] / 256 < 0.4


def test_labels_with_too_few_clips_are_left_out_unless_kept() -> None:
    clips = _clips([("a", "Gong", 7), ("b", "Bark", 9), ("c", "Chime", 2)])
    kept, left_out = drop_scarce_labels(clips, 8, keep={"Chime"})
    assert left_out == {"Gong": 7}
    assert Counter(clip.label for clip in kept) == {"Bark": 9, "Chime": 2}
