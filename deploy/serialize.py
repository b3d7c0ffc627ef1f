"""Save/load a quantised network (``QNetwork``) as one ``.npz``: the deployable integer parameters.

Keys: ``meta`` (JSON: inputs, populations with du/dv/vth/bias_exp/scale/latency, projections with kind, src,
dst, weight_exp, delay, conv geometry, order, report), ``bias/<pop>``, ``w/<i>`` (dense/conv arrays) or
``w/<i>/data|indices|indptr|shape`` (sparse). Written atomically.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from spikes.deploy.graph import Conv2d
from spikes.deploy.quantize import QNetwork, QPopulation, QProjection


def save_qnetwork(q: QNetwork, path: str | os.PathLike) -> None:
    arrays: dict[str, np.ndarray] = {}
    pops = []
    for name, p in q.populations.items():
        pops.append({"name": name, "shape": list(p.shape), "du": p.du, "dv": p.dv, "vth": p.vth,
                     "bias_exp": p.bias_exp, "scale": p.scale, "latency": p.latency})
        arrays[f"bias/{name}"] = p.bias_mant
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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_qnetwork(path: str | os.PathLike) -> QNetwork:
    try:
        z = np.load(path)
        meta = json.loads(bytes(z["meta"]).decode())
    except Exception as exc:
        raise ValueError(f"{path}: not a quantised network file: {exc}") from exc
    pops = {}
    for p in meta["populations"]:
        pops[p["name"]] = QPopulation(p["name"], tuple(p["shape"]), p["du"], p["dv"], p["vth"],
                                      z[f"bias/{p['name']}"], p["bias_exp"], p["scale"], p["latency"])
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
