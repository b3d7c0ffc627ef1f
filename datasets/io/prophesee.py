"""Prophesee RAW (EVT 2.0, EVT 3.0) and DAT (Event2d) decoders, vectorised with numpy.

EVT 2.0 (32-bit little-endian words, type = bits 31..28):
  0x0/0x1 CD OFF/ON: t_low = bits 27..22, x = bits 21..11, y = bits 10..0;
  0x8 TIME_HIGH: bits 27..0 = t >> 6;  0xA EXT_TRIGGER: t_low 27..22, id 12..8, value bit 0.
  t = (time_high << 6) | t_low.
EVT 3.0 (16-bit words, type = bits 15..12), a state machine:
  0x0 ADDR_Y y = bits 10..0;  0x2 ADDR_X: one event, p = bit 11, x = bits 10..0;
  0x3 VECT_BASE_X: p = bit 11, base x = bits 10..0;  0x4 VECT_12 / 0x5 VECT_8: validity mask
  (12 / 8 bits), event at base + i for each set bit i, then base += 12 / 8;
  0x6 TIME_LOW / 0x8 TIME_HIGH: low / high 12 bits of a 24-bit us counter, t = (high << 12) | low (low = 0 after a TIME_HIGH),
  a decrease of TIME_HIGH is a 2^24 us wrap, and the decoded time is held monotonic;  0xA EXT_TRIGGER: value bit 0, id bits 11..8.
DAT (Event2d v2): after the header one byte event type and one byte event size (8), then
  uint32 t (us), uint32 word: x = bits 13..0, y = bits 27..14, p = bits 31..28.
Events before the first TIME_HIGH (and, in EVT3, before the first ADDR_Y) have no defined
time/row and are dropped, as Prophesee's OpenEB decoder does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..events import TRIGGER_DTYPE, EventFileError, make_events


def _ffill_index(mask: np.ndarray) -> np.ndarray:
    """For each position, the index of the last True in ``mask`` at or before it (-1 if none)."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    return np.maximum.accumulate(idx) if len(idx) else idx


def _triggers(t: np.ndarray, ids: np.ndarray, p: np.ndarray) -> np.ndarray:
    tr = np.empty(len(t), dtype=TRIGGER_DTYPE)
    tr["t"], tr["id"], tr["p"] = t, ids, p
    return tr


CHUNK_WORDS = 1 << 22  # words decoded at once: bounds the decoders' temporary memory (~100 B per word)


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return make_events([], [], [], []), _triggers(np.zeros(0), np.zeros(0), np.zeros(0))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def decode_evt2(payload: bytes | np.ndarray, path: Path | str = "<bytes>",
                chunk_words: int = CHUNK_WORDS) -> tuple[np.ndarray, np.ndarray]:
    """Decode EVT 2.0 words into (events, triggers), ``chunk_words`` words at a time."""
    if len(payload) % 4:
        raise EventFileError(f"{path}: truncated EVT 2.0 payload ({len(payload)} bytes is not a multiple of 4)")
    words = np.frombuffer(payload, dtype="<u4")
    typ_all = words >> 28
    known = np.isin(typ_all, (0x0, 0x1, 0x8, 0xA, 0xE, 0xF))
    if len(words) and known.mean() < 0.99:
        raise EventFileError(f"{path}: not EVT 2.0 data ({100 * (1 - known.mean()):.0f} % unknown word types)")
    parts, carry_th = [], -1  # carry_th: TIME_HIGH in force at the chunk start (-1: none yet)
    for a in range(0, len(words), chunk_words):
        w = words[a : a + chunk_words]
        typ = w >> 28
        th_idx = _ffill_index(typ == 0x8)
        t_high = np.where(th_idx >= 0, (w[np.maximum(th_idx, 0)] & 0x0FFFFFFF).astype(np.int64), carry_th)
        carry_th = int(t_high[-1])
        t = (t_high << 6) | ((w >> 22) & 0x3F).astype(np.int64)
        valid = t_high >= 0
        cd = ((typ == 0x0) | (typ == 0x1)) & valid
        trg = (typ == 0xA) & valid
        parts.append((make_events((w[cd] >> 11) & 0x7FF, w[cd] & 0x7FF, t[cd], typ[cd]),
                      _triggers(t[trg], (w[trg] >> 8) & 0x1F, w[trg] & 1)))
    return _concat(parts)


def decode_evt3(payload: bytes | np.ndarray, path: Path | str = "<bytes>",
                chunk_words: int = CHUNK_WORDS) -> tuple[np.ndarray, np.ndarray]:
    """Decode EVT 3.0 words into (events, triggers), ``chunk_words`` words at a time (state carried over).

    Our own decoder (from the Prophesee EVT 3.0 spec) because expelliarmus 1.1.12 gets this format's
    timestamps wrong and fails on trigger words.
    """
    if len(payload) % 2:
        raise EventFileError(f"{path}: truncated EVT 3.0 payload ({len(payload)} bytes is not a multiple of 2)")
    words = np.frombuffer(payload, dtype="<u2")
    known = np.isin(words >> 12, (0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF))
    if len(words) and known.mean() < 0.99:
        raise EventFileError(f"{path}: not EVT 3.0 data ({100 * (1 - known.mean()):.0f} % unknown word types)")
    # state in force at a chunk start: time high (12 bits + wraps << 12), time low, time, row,
    # vector base x (next vector's first column) and its polarity; -1 = not seen yet
    st = {"th": -1, "tl": 0, "t": -1, "y": -1, "base": -1, "pol": 0}
    parts = []
    for a in range(0, len(words), chunk_words):
        parts.append(_decode_evt3_chunk(words[a : a + chunk_words], st))
    return _concat(parts)


def _decode_evt3_chunk(w: np.ndarray, st: dict) -> tuple[np.ndarray, np.ndarray]:
    typ = (w >> 12).astype(np.uint8)
    val = (w & 0x0FFF).astype(np.int64)
    n = len(w)
    # time: forward-filled TIME_HIGH (a decrease is a 2^24 us wrap) and TIME_LOW (reset by TIME_HIGH)
    is_th = typ == 0x8
    th_vals = val[is_th]
    prev = st["th"] & 0xFFF if st["th"] >= 0 else (th_vals[0] if len(th_vals) else 0)
    wraps = np.cumsum(np.diff(np.concatenate([[prev], th_vals])) < 0) + (max(st["th"], 0) >> 12)
    th_full = np.full(n, -1, dtype=np.int64)
    th_full[is_th] = th_vals + (wraps << 12)
    th_idx = _ffill_index(is_th)
    t_high = np.where(th_idx >= 0, th_full[np.maximum(th_idx, 0)], st["th"])
    tl_idx = _ffill_index((typ == 0x6) | is_th)
    tl_src = typ[np.maximum(tl_idx, 0)] == 0x6
    t_low = np.where(tl_idx >= 0, np.where(tl_src, val[np.maximum(tl_idx, 0)], 0), st["tl"])
    # the time state never decreases: a TIME_LOW below the current time (seen in the Gen4.1 sample
    # right after a TIME_HIGH) is held at the current time, as faery does
    t = np.maximum.accumulate(np.maximum((t_high << 12) | t_low, st["t"]))
    y_idx = _ffill_index(typ == 0x0)
    y = np.where(y_idx >= 0, val[np.maximum(y_idx, 0)] & 0x7FF, st["y"])
    ok = (t_high >= 0) & (y >= 0)
    s_idx = np.flatnonzero((typ == 0x2) & ok)
    # vector events: base x from the last VECT_BASE_X (or the carried base) plus the widths since
    inc = np.where(typ == 0x4, 12, np.where(typ == 0x5, 8, 0))
    cs = np.cumsum(inc) - inc
    b_idx = _ffill_index(typ == 0x3)
    bsafe = np.maximum(b_idx, 0)
    base_all = np.where(b_idx >= 0, (val[bsafe] & 0x7FF) + cs - cs[bsafe], st["base"] + cs)
    pol_all = np.where(b_idx >= 0, (val[bsafe] >> 11) & 1, st["pol"])
    has_base = (b_idx >= 0) | (st["base"] >= 0)
    v_idx = np.flatnonzero(((typ == 0x4) | (typ == 0x5)) & ok & has_base)
    base, vpol = base_all[v_idx], pol_all[v_idx]
    mask = np.where(typ[v_idx] == 0x4, val[v_idx], val[v_idx] & 0xFF)
    bits = ((mask[:, None] >> np.arange(12)) & 1).astype(bool)
    vw, vk = np.nonzero(bits)  # row-major: word order, then ascending x
    word = np.concatenate([s_idx, v_idx[vw]])
    sub = np.concatenate([np.zeros(len(s_idx), dtype=np.int64), vk + 1])
    x = np.concatenate([val[s_idx] & 0x7FF, base[vw] + vk])
    p = np.concatenate([(val[s_idx] >> 11) & 1, vpol[vw]])
    order = np.lexsort((sub, word))
    word, x, p = word[order], x[order], p[order]
    trg = (typ == 0xA) & (t_high >= 0)
    if n:
        last_base = base_all[-1] + inc[-1] if has_base[-1] else -1
        st.update(th=int(t_high[-1]), tl=int(t_low[-1]), t=int(t[-1]), y=int(y[-1]),
                  base=int(last_base), pol=int(pol_all[-1]))
    return make_events(x, y[word], t[word], p), _triggers(t[trg], (val[trg] >> 8) & 0xF, val[trg] & 1)


def decode_dat(payload: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Decode a DAT payload (starting at the type/size bytes after the header) into events."""
    if len(payload) < 2:
        raise EventFileError(f"{path}: truncated DAT file (no event type/size bytes after the header)")
    ev_type, ev_size = payload[0], payload[1]
    if ev_size != 8:
        raise EventFileError(f"{path}: DAT event size {ev_size} (type {ev_type}) is not the Event2d size 8")
    body = payload[2:]
    if len(body) % 8:
        raise EventFileError(f"{path}: truncated DAT file ({len(body) % 8} trailing bytes after the last whole event)")
    raw = np.frombuffer(body, dtype=[("t", "<u4"), ("w", "<u4")])
    w = raw["w"]
    return make_events(w & 0x3FFF, (w >> 14) & 0x3FFF, raw["t"].astype(np.int64), (w >> 28) & 0xF)
