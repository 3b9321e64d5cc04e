"""Writes CDF files described in JSON with PyPI cdflib: the server's tests and benchmark
serve them through the `files` source and compare with csv files and the embedded store.

Usage: write_cdf.py SPEC.json
       write_cdf.py --year DIR     (the benchmark's year: 365 daily files, see year())

SPEC is {"files": [{"path": ..., "encoding": 6, "globals": {name: text},
"variables": [{"name", "type" (CDF type code), "dims" ([] for scalars), "num_elems",
"rec_vary", "compress" (gzip level, 0 for none), "attrs": {name: text or [value, "CDF_TYPE"]},
"values": one item per record (nested lists for arrays)}]}]}.
Numbers may be given as strings (csv fields, "NaN"); epoch values (types 31, 33) are
HAPI time strings, converted by cdflib (independently of the Rust reader), or numbers
(raw values, e.g. a fill). Non-ASCII text is written as an ASCII placeholder of the
same byte length and patched in afterwards (cdflib's writer shifts later records on
non-ASCII text: shared/notes/cdf.md). Each file is read back with cdflib and its
record counts checked.
"""

import json
import re
import sys

import numpy as np
import cdflib
from cdflib import cdfepoch
from cdflib.cdfwrite import CDF as Writer

NUMPY = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64, 11: np.uint8, 12: np.uint16, 14: np.uint32,
         21: np.float32, 22: np.float64, 31: np.float64, 33: np.int64, 41: np.int8, 44: np.float32,
         45: np.float64}


def nine_digits(s):
    """A HAPI time as cdflib's TT2000 text form: no Z, nine fraction digits."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z?", s)
    if not m:
        raise ValueError(f"not a full HAPI time: {s}")
    return m.group(1) + "." + (m.group(2) or "").ljust(9, "0")


def epoch_value(dtype, v):
    if not isinstance(v, str):
        return v
    t = cdfepoch.parse(nine_digits(v))  # TT2000
    if dtype == 33:
        return int(t)
    # CDF_EPOCH: milliseconds since year 0 from the same breakdown.
    parts = cdfepoch.breakdown_tt2000(int(t))
    return float(cdfepoch.compute_epoch([int(x) for x in list(np.asarray(parts).reshape(-1))[:7]]))


def flat(v):
    if isinstance(v, list):
        for x in v:
            yield from flat(x)
    else:
        yield v


def attr(v):
    if isinstance(v, list):
        value, kind = v
        if kind in ("CDF_DOUBLE", "CDF_REAL8", "CDF_FLOAT", "CDF_REAL4", "CDF_EPOCH"):
            value = float(value)
        elif kind != "CDF_CHAR":
            value = int(value)
        return [value, kind]
    return v


def write(spec):
    path = spec["path"]
    w = Writer(path, cdf_spec={"Encoding": spec.get("encoding", 6)}, delete=True)
    if spec.get("globals"):
        w.write_globalattrs({k: {0: v} for k, v in spec["globals"].items()})
    patches = []
    for v in spec["variables"]:
        dtype, dims = v["type"], v.get("dims", [])
        n = len(v["values"])
        if dtype in (51, 52):
            data = []
            for s in flat(v["values"]):
                b = s.encode()
                if len(b) != len(s):
                    assert v.get("compress", 0) == 0, "non-ASCII text must be uncompressed"
                    token = f"~{len(patches)}~".ljust(len(b), "~").encode()
                    assert len(token) == len(b), "placeholder longer than the text"
                    patches.append((token, b))
                    s = token.decode()
                data.append(s)
            data = np.array(data).reshape([n] + dims) if dims else data
        else:
            items = [epoch_value(dtype, x) if dtype in (31, 33) else x for x in flat(v["values"])]
            if dtype in (21, 22, 44, 45, 31):
                items = [float(x) for x in items]
            else:
                items = [int(x) for x in items]
            data = np.array(items, dtype=NUMPY[dtype]).reshape([n] + dims)
        attrs = {k: attr(a) for k, a in v.get("attrs", {}).items()}
        w.write_var({"Variable": v["name"], "Data_Type": dtype, "Num_Elements": v.get("num_elems", 1),
                     "Rec_Vary": v.get("rec_vary", True), "Dim_Sizes": dims, "Compress": v.get("compress", 0)},
                    var_attrs=attrs, var_data=data if n else None)
    w.close()
    if patches:
        b = open(path, "rb").read()
        for token, text in patches:
            assert b.count(token) == 1, f"placeholder {token} not unique"
            b = b.replace(token, text)
        open(path, "wb").write(b)
    back = cdflib.CDF(path)
    for v in spec["variables"]:
        got = int(back.varinq(v["name"]).Last_Rec) + 1
        assert got == len(v["values"]), f"{path} {v['name']}: {got} records read back"


def year(root):
    """The benchmark's year (crates/hapi-bench, `files` and `cdf` rows): 2025 at 5 s, the
    values the csv files print with three decimals, so that the three sources hold the
    same records: B_GSE = (k/100, -k/100, k/200), B_total = 12k/1000, quality = t % 4,
    for k = t % 3600."""
    import os

    t0 = int(cdfepoch.parse("2025-01-01T00:00:00.000000000"))
    unix0 = 1_735_689_600
    n = 17_280
    for day in range(365):
        secs = unix0 + day * 86_400 + np.arange(n, dtype=np.int64) * 5
        k = (secs % 3600).astype(np.float64)
        b = np.stack([k / 100, -(k / 100), k / 200], axis=1)
        date = np.datetime64(int(secs[0]), "s").astype(object)
        d = os.path.join(root, f"{date.year:04d}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"y_{date.year:04d}{date.month:02d}{date.day:02d}.cdf")
        w = Writer(path, cdf_spec={"Encoding": 6}, delete=True)
        # 2025 has no leap second: TT2000 steps like Unix time.
        epoch = t0 + (secs - unix0) * 1_000_000_000
        w.write_var({"Variable": "Epoch", "Data_Type": 33, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": []},
                    var_attrs={"VAR_TYPE": "support_data"}, var_data=epoch)
        data = {"VAR_TYPE": "data", "DEPEND_0": "Epoch", "UNITS": "nT", "FILLVAL": [-1e31, "CDF_DOUBLE"]}
        w.write_var({"Variable": "B_GSE", "Data_Type": 45, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": [3]},
                    var_attrs=data, var_data=b)
        w.write_var({"Variable": "B_total", "Data_Type": 45, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": []},
                    var_attrs=data, var_data=k * 12 / 1000)
        w.write_var({"Variable": "quality", "Data_Type": 4, "Num_Elements": 1, "Rec_Vary": True, "Dim_Sizes": []},
                    var_attrs={"VAR_TYPE": "data", "DEPEND_0": "Epoch", "FILLVAL": [-1, "CDF_INT4"]},
                    var_data=(secs % 4).astype(np.int32))
        w.close()


def main():
    if sys.argv[1] == "--year":
        year(sys.argv[2])
        return
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    for file in spec["files"]:
        write(file)


if __name__ == "__main__":
    main()
