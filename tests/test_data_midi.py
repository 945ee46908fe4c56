import struct

import numpy as np
import pytest

from neuraudio.data.midi import (
    CRASH, KICK, MAJOR, MINOR, SNARE, TICKS, Note, Song, _varlen, bass, drums, generate_song, lead, midi_file,
    vocals,
)


def parse_track(data: bytes) -> list[tuple[int, bytes]]:
    """(absolute tick, event bytes) of a format-0 file written by midi_file (running status not used)."""
    assert data[:4] == b"MThd"
    _, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    assert (fmt, ntracks, division) == (0, 1, TICKS)
    assert data[14:18] == b"MTrk"
    (length,) = struct.unpack(">I", data[18:22])
    track, i, now, events = data[22 : 22 + length], 0, 0, []
    assert len(track) == length
    while i < len(track):
        delta = 0
        while True:
            byte = track[i]
            i += 1
            delta = (delta << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        now += delta
        status = track[i]
        if status == 0xFF:
            size = track[i + 2]
            events.append((now, track[i : i + 3 + size]))
            i += 3 + size
        else:
            size = 2 if (status & 0xF0) == 0xC0 else 3
            events.append((now, track[i : i + size]))
            i += size
    return events


def test_varlen_matches_the_standard_examples():
    assert _varlen(0) == b"\x00" and _varlen(0x7F) == b"\x7f"
    assert _varlen(0x80) == b"\x81\x00" and _varlen(0x3FFF) == b"\xff\x7f" and _varlen(0x200000) == b"\x81\x80\x80\x00"


def test_midi_file_round_trip_keeps_notes_tempo_and_program():
    notes = [Note(0, 480, 60, 100), Note(240, 960, 64, 80), Note(1440, 120, 67, 90)]
    events = parse_track(midi_file(notes, 120.0, program=33, channel=2))
    tempo = [e for t, e in events if e[:2] == b"\xff\x51"][0]
    assert int.from_bytes(tempo[3:6], "big") == 500000
    assert any(e == bytes([0xC2, 33]) for _, e in events)
    ons = [(t, e[1], e[2]) for t, e in events if e[0] == 0x92]
    offs = [(t, e[1]) for t, e in events if e[0] == 0x82]
    assert ons == [(0, 60, 100), (240, 64, 80), (1440, 67, 90)]
    assert sorted(offs) == [(480, 60), (1200, 64), (1560, 67)]
    assert events[-1][1] == b"\xff\x2f\x00"


def test_song_is_deterministic_and_long_enough():
    a, b = generate_song(np.random.default_rng(7), 20.0), generate_song(np.random.default_rng(7), 20.0)
    assert a == b
    assert a.seconds >= 20.0 and a.bars % 4 == 0
    assert {"drums", "bass"} <= set(a.parts)
    other = generate_song(np.random.default_rng(8), 20.0)
    assert other != a


@pytest.mark.parametrize("seed", range(5))
def test_parts_follow_the_key_and_the_chords(seed):
    rng = np.random.default_rng(seed)
    song = generate_song(rng, 16.0, keep_probability=1.0)
    scale = set(song.scale())
    bar_ticks = 4 * TICKS
    for note in bass(song, np.random.default_rng(0)):
        chord = song.chord(note.start // bar_ticks)
        assert note.pitch % 12 in (chord[0], chord[2])  # roots and fifths
        assert 28 <= note.pitch <= 55
    for make in (lead, vocals):
        notes = make(song, np.random.default_rng(1))
        assert notes and all(n.pitch % 12 in scale for n in notes)
        on_strong = [n for n in notes if n.start % (2 * TICKS) == 0]
        assert all(n.pitch % 12 in song.chord(n.start // bar_ticks)[:3] for n in on_strong)
    assert all(n.syllable for n in vocals(song, np.random.default_rng(1)))


def test_chords_are_diatonic_triads():
    song = Song(100.0, 2, "major", (0, 4, 5, 3), 4, "rock")
    assert song.chord(0)[:3] == [2, 6, 9]        # D major
    assert song.chord(1)[:3] == [9, 1, 4]        # A major
    assert song.chord(2)[:3] == [11, 2, 6]       # B minor
    minor = Song(100.0, 9, "minor", (0,), 4, "rock")
    assert minor.chord(0)[:3] == [9, 0, 4]       # A minor
    assert len(MAJOR) == len(MINOR) == 7


def test_drums_have_backbeat_fills_and_crashes():
    song = Song(120.0, 0, "major", (0, 4, 5, 3), 8, "rock")
    notes = drums(song, np.random.default_rng(0))
    bar = 4 * TICKS
    snares = {n.start % bar for n in notes if n.pitch == SNARE and (n.start // bar) % 4 != 3}
    assert {TICKS, 3 * TICKS} <= snares                      # snare on beats 2 and 4
    assert any(n.pitch == KICK and n.start % bar == 0 for n in notes)
    fills = [n for n in notes if (n.start // bar) % 4 == 3 and n.pitch in (50, 47, 43)]
    assert fills                                            # toms in the last bar of each section
    assert any(n.pitch == CRASH and n.start == 4 * bar for n in notes)
