"""Save/load a quantised network (``QNetwork``) as one ``.npz``: the deployable integer parameters.

Keys: ``meta`` (JSON: inputs, populations with their kind and scalar fields (LIF: du/dv/vth/bias_exp/scale/
latency), projections with kind, src, dst, weight_exp, delay, conv geometry, order, report),
``pop/<pop>/<field>`` (a population's array fields, e.g. ``bias_mant``), ``w/<i>`` (dense/conv arrays) or
``w/<i>/data|indices|indptr|shape`` (sparse). Written atomically.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spikes.graph import Conv2d
from spikes.io import atomic_write_bytes
from spikes.deploy.populations import KINDS, kind_of
from spikes.deploy.quantize import QNetwork, QProjection


def save_qnetwork(q: QNetwork, path: str | os.PathLike) -> None:
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for name, p in q.populations.items():
        entry: dict = {"kind": kind_of(p).name}
        for f in dataclasses.fields(p):
            value = getattr(p, f.name)
            if isinstance(value, np.ndarray):
                arrays[f"pop/{name}/{f.name}"] = value
            else:
                entry[f.name] = list(value) if isinstance(value, tuple) else value
        pops.append(entry)
    projs = []
    for i, pr in enumerate(q.projections):
        d = {"src": pr.src, "dst": pr.dst, "kind": pr.kind, "weight_exp": pr.weight_exp, "delay": pr.delay,
             "recurrent": pr.recurrent}
        if pr.conv is not None:
            c = pr.conv
            d["conv"] = {"in_shape": list(c.in_shape), "stride": list(c.stride), "padding": list(c.padding),
                         "dilation": list(c.dilation), "groups": c.groups}
        if sp.issparse(pr.weight):
            w = pr.weight.tocsr()
            arrays.update({f"w/{i}/data": w.data, f"w/{i}/indices": w.indices, f"w/{i}/indptr": w.indptr,
                           f"w/{i}/shape": np.array(w.shape)})
        else:
            arrays[f"w/{i}"] = np.asarray(pr.weight)
        projs.append(d)
    meta = {"inputs": {k: list(v) for k, v in q.inputs.items()}, "populations": pops, "projections": projs,
            "outputs": q.outputs, "order": q.order(), "report": q.report}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_qnetwork(path: str | os.PathLike) -> QNetwork:
    try:
        z = np.load(path)
        meta = json.loads(bytes(z["meta"]).decode())
    except Exception as exc:
        raise ValueError(f"{path}: not a quantised network file: {exc}") from exc
    pops = {}
    for p in meta["populations"]:
        kind = p.pop("kind", "lif")
        if kind not in KINDS:
            raise ValueError(f"{path}: population {p['name']!r} has unknown kind {kind!r}")
        qtype = KINDS[kind].qtype
        fields = {}
        for f in dataclasses.fields(qtype):
            key = f"pop/{p['name']}/{f.name}"
            if key in z:
                fields[f.name] = z[key]
            elif f.name in p:
                fields[f.name] = tuple(p[f.name]) if f.name == "shape" else p[f.name]
            elif f.default is not dataclasses.MISSING:    # a field added after the file was written
                fields[f.name] = f.default
            else:
                raise ValueError(f"{path}: population {p['name']!r} lacks {f.name!r}")
        pops[p["name"]] = qtype(**fields)
    projs = []
    for i, d in enumerate(meta["projections"]):
        if f"w/{i}" in z:
            w = z[f"w/{i}"]
        else:
            w = sp.csr_matrix((z[f"w/{i}/data"], z[f"w/{i}/indices"], z[f"w/{i}/indptr"]), shape=tuple(z[f"w/{i}/shape"]))
        conv = None
        if "conv" in d:
            c = d["conv"]
            conv = Conv2d(w, tuple(c["in_shape"]), None, tuple(c["stride"]), tuple(c["padding"]), tuple(c["dilation"]),
                          c["groups"])
            w = w.astype(np.int64)
        projs.append(QProjection(d["src"], d["dst"], d["kind"], w, d["weight_exp"], d["delay"], d["recurrent"], conv))
    return QNetwork({k: tuple(v) for k, v in meta["inputs"].items()}, pops, projs, meta["outputs"], meta["report"],
                    meta["order"])
