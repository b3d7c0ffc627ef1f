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


def decode_evt2(payload: bytes | np.ndarray, path: Path | str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Decode EVT 2.0 words into (events, triggers)."""
    if len(payload) % 4:
        raise EventFileError(f"{path}: truncated EVT 2.0 payload ({len(payload)} bytes is not a multiple of 4)")
    w = np.frombuffer(payload, dtype="<u4")
    typ = w >> 28
    known = np.isin(typ, (0x0, 0x1, 0x8, 0xA, 0xE, 0xF))
    if len(w) and known.mean() < 0.99:
        raise EventFileError(f"{path}: not EVT 2.0 data ({100 * (1 - known.mean()):.0f} % unknown word types)")
    th_idx = _ffill_index(typ == 0x8)
    t_high = np.where(th_idx >= 0, (w[np.maximum(th_idx, 0)] & 0x0FFFFFFF).astype(np.int64), -1)
    t = (t_high << 6) | ((w >> 22) & 0x3F).astype(np.int64)
    valid = t_high >= 0
    cd = ((typ == 0x0) | (typ == 0x1)) & valid
    ev = make_events((w[cd] >> 11) & 0x7FF, w[cd] & 0x7FF, t[cd], typ[cd])
    trg = (typ == 0xA) & valid
    tr = _triggers(t[trg], (w[trg] >> 8) & 0x1F, w[trg] & 1)
    return ev, tr


def decode_evt3(payload: bytes | np.ndarray, path: Path | str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Decode EVT 3.0 words into (events, triggers).

    Our own decoder (from the Prophesee EVT 3.0 spec) because expelliarmus 1.1.12 gets this format's
    timestamps wrong and fails on trigger words.
    """
    if len(payload) % 2:
        raise EventFileError(f"{path}: truncated EVT 3.0 payload ({len(payload)} bytes is not a multiple of 2)")
    w = np.frombuffer(payload, dtype="<u2")
    typ = (w >> 12).astype(np.uint8)
    val = (w & 0x0FFF).astype(np.int64)
    known = np.isin(typ, (0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF))
    if len(w) and known.mean() < 0.99:
        raise EventFileError(f"{path}: not EVT 3.0 data ({100 * (1 - known.mean()):.0f} % unknown word types)")
    n = len(w)
    # time: forward-filled TIME_HIGH (with wrap count) and TIME_LOW
    is_th = typ == 0x8
    th_vals = val[is_th]
    wraps = np.concatenate([[0], np.cumsum(np.diff(th_vals) < 0)]) if len(th_vals) else th_vals
    th_full = np.full(n, -1, dtype=np.int64)
    th_full[is_th] = th_vals + (wraps << 12)
    th_idx = _ffill_index(is_th)
    t_high = np.where(th_idx >= 0, th_full[np.maximum(th_idx, 0)], -1)
    tl_idx = _ffill_index((typ == 0x6) | is_th)  # a TIME_HIGH starts its period at low = 0
    t_low = np.where((tl_idx >= 0) & (typ[np.maximum(tl_idx, 0)] == 0x6), val[np.maximum(tl_idx, 0)], 0)
    # the time state never decreases: a TIME_LOW below the current time (seen in the Gen4.1 sample
    # right after a TIME_HIGH) is held at the current time, as faery does
    t = np.maximum.accumulate((t_high << 12) | t_low) if n else np.zeros(0, dtype=np.int64)
    y_idx = _ffill_index(typ == 0x0)
    y = np.where(y_idx >= 0, val[np.maximum(y_idx, 0)] & 0x7FF, -1)
    ok = (t_high >= 0) & (y >= 0)
    # single events
    single = (typ == 0x2) & ok
    s_idx = np.flatnonzero(single)
    # vector events: base x from the last VECT_BASE_X plus the widths of the vectors since
    is_vec = ((typ == 0x4) | (typ == 0x5)) & ok
    inc = np.where(typ == 0x4, 12, np.where(typ == 0x5, 8, 0))
    cs = np.cumsum(inc) - inc
    b_idx = _ffill_index(typ == 0x3)
    is_vec &= b_idx >= 0
    v_idx = np.flatnonzero(is_vec)
    vb = b_idx[v_idx]
    base = (val[vb] & 0x7FF) + cs[v_idx] - cs[vb]
    vpol = (val[vb] >> 11) & 1
    mask = np.where(typ[v_idx] == 0x4, val[v_idx], val[v_idx] & 0xFF)
    bits = ((mask[:, None] >> np.arange(12)) & 1).astype(bool)
    vw, vk = np.nonzero(bits)  # row-major: word order, then ascending x
    word = np.concatenate([s_idx, v_idx[vw]])
    sub = np.concatenate([np.zeros(len(s_idx), dtype=np.int64), vk + 1])
    x = np.concatenate([val[s_idx] & 0x7FF, base[vw] + vk])
    p = np.concatenate([(val[s_idx] >> 11) & 1, vpol[vw]])
    order = np.lexsort((sub, word))
    word, x, p = word[order], x[order], p[order]
    ev = make_events(x, y[word], t[word], p)
    trg = (typ == 0xA) & (t_high >= 0)
    tr = _triggers(t[trg], (val[trg] >> 8) & 0xF, val[trg] & 1)
    return ev, tr


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
