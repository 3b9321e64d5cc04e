"""Writes CDF reference files with PyPI cdflib and, for each, the values cdflib reads back.

Usage: gen_cdf.py OUTDIR [--day]

Writes OUTDIR/*.cdf and OUTDIR/expected.json. Every expected value is what cdflib's
*reader* returns for the written file (its writer has bugs: shared/notes/cdf.md), so the
Rust test compares against cdflib's reading, never against what was meant to be written.
Floats are given as their IEEE bit patterns so the comparison is exact. Epoch variables
also get their Unix nanoseconds, computed here independently: EPOCH and EPOCH16 with
exact fractions, TT2000 from cdflib's own breakdown (its leap-second table), a time
inside a leap second mapped to 23:59:59.999999999 (docs/decisions.md).

--day also writes day.cdf, a ~26 MB daily file for the benchmark (not for the tests).
"""

import json
import os
import struct
import sys
from fractions import Fraction

import numpy as np
import cdflib
from cdflib import cdfepoch
from cdflib.cdfwrite import CDF as Writer

NS = 10**9
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
UNIX_FROM_YEAR0_S = 62167219200
CHAR_TYPES = (51, 52)


def sat(v):
    return max(I64_MIN, min(I64_MAX, v))


def days_from_civil(y, m, d):
    import datetime

    return (datetime.date(y, m, d) - datetime.date(1970, 1, 1)).days


def epoch_ns(ms):
    if ms != ms:
        return I64_MIN
    if ms in (float("inf"), float("-inf")):
        return I64_MAX if ms > 0 else I64_MIN
    return sat(round(Fraction(ms) * 10**6) - UNIX_FROM_YEAR0_S * 1000 * 10**6)


def epoch16_ns(s, ps):
    return sat(round(Fraction(s) * NS) - UNIX_FROM_YEAR0_S * NS + int(np.floor(ps)) // 1000)


def tt2000_ns(tt, parts):
    if tt <= I64_MIN + 1:
        return I64_MIN
    y, mo, d, h, mi, s, ms, us, ns = (int(x) for x in parts)
    day = days_from_civil(y, mo, d) * 86400 * NS
    if s == 60:
        return day + (h * 3600 + mi * 60 + 59) * NS + 999_999_999
    return day + (h * 3600 + mi * 60 + s) * NS + ms * 10**6 + us * 1000 + ns


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", float(x)))[0]


def encode_values(dtype, arr):
    """The flat, row-major values as JSON-exact items."""
    if dtype in CHAR_TYPES:
        if isinstance(arr, str):
            return [arr]
        return [str(x) for x in np.asarray(arr).reshape(-1)]
    a = np.asarray(arr)
    if dtype == 32:
        flat = a.reshape(-1)
        return [[f64_bits(c.real), f64_bits(c.imag)] for c in flat]
    flat = a.reshape(-1)
    if dtype in (21, 44):
        return [f32_bits(x) for x in flat]
    if dtype in (22, 45, 31):
        return [f64_bits(x) for x in flat]
    return [int(x) for x in flat]


def nanos(dtype, arr):
    flat = np.asarray(arr).reshape(-1)
    if dtype == 31:
        return [epoch_ns(float(x)) for x in flat]
    if dtype == 32:
        return [epoch16_ns(float(c.real), float(c.imag)) for c in flat]
    if dtype == 33:
        # One call for the whole array: cdflib's breakdown is slow per value.
        parts = np.asarray(cdfepoch.breakdown_tt2000(flat.astype(np.int64))).reshape(len(flat), -1)
        return [tt2000_ns(int(x), p) for x, p in zip(flat, parts)]
    return None


def attr_json(v):
    """An attribute entry as cdflib reads it: text, or numbers with their bits."""
    if isinstance(v, str):
        return {"text": v}
    a = np.asarray(v).reshape(-1)
    if a.dtype.kind == "f":
        if a.dtype.itemsize == 4:
            return {"f32": [f32_bits(x) for x in a]}
        return {"f64": [f64_bits(x) for x in a]}
    if a.dtype.kind == "c":
        return {"epoch16": [[f64_bits(c.real), f64_bits(c.imag)] for c in a]}
    return {"int": [int(x) for x in a]}


def read_back(path):
    """What cdflib reads from `path`."""
    cdf = cdflib.CDF(path)
    info = cdf.cdf_info()
    out = {
        "encoding": int(info.Encoding) if hasattr(info, "Encoding") else None,
        "majority": info.Majority,
        "globals": {},
        "variables": {},
    }
    for name, entries in cdf.globalattsget().items():
        out["globals"][name] = [attr_json(e) for e in entries]
    for name in list(info.rVariables) + list(info.zVariables):
        vi = cdf.varinq(name)
        dims = [int(d) for d in vi.Dim_Sizes]
        varys = [bool(x) for x in vi.Dim_Vary] if dims else []
        records = int(vi.Last_Rec) + 1
        var = {
            "data_type": int(vi.Data_Type),
            "num_elems": int(vi.Num_Elements),
            "dims": dims,
            "dim_varys": varys,
            "rec_vary": bool(vi.Rec_Vary),
            "records": records,
            "sparse": vi.Sparse,
            "compressed": int(vi.Compress) != 0,
            "attributes": {k: attr_json(v) for k, v in cdf.varattsget(name).items()},
        }
        if records > 0:
            data = cdf.varget(name)
            var["values"] = encode_values(var["data_type"], data)
            ns = nanos(var["data_type"], data)
            if ns is not None:
                var["nanos"] = ns
        else:
            var["values"] = []
        out["variables"][name] = var
    return out


def tt(*c):
    return int(cdfepoch.compute_tt2000(list(c)))


# Times that cross the leap seconds at the end of 2015-06-30 and 2016-12-31, and inside them.
LEAP_TT2000 = np.array(
    [
        tt(2015, 6, 30, 23, 59, 59, 0, 0, 0),
        tt(2015, 6, 30, 23, 59, 59, 999, 999, 999),
        tt(2015, 6, 30, 23, 59, 59, 999, 999, 999) + 1,  # 23:59:60.000000000
        tt(2015, 6, 30, 23, 59, 59, 999, 999, 999) + 500_000_001,  # 23:59:60.5
        tt(2015, 7, 1, 0, 0, 0, 0, 0, 0) - 1,  # 23:59:60.999999999
        tt(2015, 7, 1, 0, 0, 0, 0, 0, 0),
        tt(2016, 12, 31, 23, 59, 59, 500, 0, 0),
        tt(2017, 1, 1, 0, 0, 0, 0, 0, 0) - 400_000_000,  # 23:59:60.6
        tt(2017, 1, 1, 0, 0, 0, 0, 0, 0),
        tt(2017, 1, 1, 0, 0, 0, 1, 0, 0),
        tt(2000, 1, 1, 12, 0, 0, 0, 0, 0),
        tt(1999, 1, 1, 0, 0, 0, 0, 0, 0) - 1,
    ],
    dtype=np.int64,
)
EPOCHS = np.array(
    [
        cdfepoch.compute_epoch([2015, 6, 30, 23, 59, 59, 999]),
        cdfepoch.compute_epoch([2017, 1, 1, 0, 0, 0, 0]),
        cdfepoch.compute_epoch([1970, 1, 1, 0, 0, 0, 0]),
        cdfepoch.compute_epoch([2024, 2, 29, 12, 34, 56, 789]),
        63555753600000.0 + 1.0 / 3.0,  # not a whole millisecond: exact rounding
    ],
    dtype=np.float64,
)
EPOCH16S = np.array(
    [
        cdfepoch.compute_epoch16([2016, 12, 31, 23, 59, 59, 999, 999, 999, 999]),
        cdfepoch.compute_epoch16([2017, 1, 1, 0, 0, 0, 0, 0, 0, 1]),
        cdfepoch.compute_epoch16([1970, 1, 1, 0, 0, 0, 0, 0, 1, 500]),
    ]
)

# One variable per type: (name, type, numpy dtype or None for text, values of 4 records).
N = 4
TYPED = [
    ("int1", 1, np.int8, [-128, -1, 0, 127]),
    ("int2", 2, np.int16, [-32768, -2, 3, 32767]),
    ("int4", 4, np.int32, [-(2**31), -3, 4, 2**31 - 1]),
    ("int8", 8, np.int64, [-(2**63), -4, 5, 2**63 - 1]),
    ("uint1", 11, np.uint8, [0, 1, 200, 255]),
    ("uint2", 12, np.uint16, [0, 2, 40000, 65535]),
    ("uint4", 14, np.uint32, [0, 3, 3_000_000_000, 2**32 - 1]),
    ("real4", 21, np.float32, [-1.5, 0.0, 3.25e-20, np.inf]),
    ("real8", 22, np.float64, [-1e31, 0.1, 2.5e300, np.nan]),
    ("byte", 41, np.int8, [-7, 0, 7, 100]),
    ("float", 44, np.float32, [1.0, -0.0, 1e30, -3.5]),
    ("double", 45, np.float64, [np.pi, -np.e, 1e-300, 0.0]),
]


def common_attrs(name, dtype, fill):
    a = {
        "CATDESC": f"the {name} variable",
        "UNITS": "nT",
        "LABLAXIS": name.upper(),
        "VAR_TYPE": "data",
        "DEPEND_0": "Epoch",
    }
    if fill is not None:
        a["FILLVAL"] = [fill, dtype]
    return a


TYPE_NAMES = {1: "CDF_INT1", 2: "CDF_INT2", 4: "CDF_INT4", 8: "CDF_INT8", 11: "CDF_UINT1", 12: "CDF_UINT2",
              14: "CDF_UINT4", 21: "CDF_REAL4", 22: "CDF_REAL8", 31: "CDF_EPOCH", 32: "CDF_EPOCH16",
              33: "CDF_TIME_TT2000", 41: "CDF_BYTE", 44: "CDF_FLOAT", 45: "CDF_DOUBLE", 51: "CDF_CHAR",
              52: "CDF_UCHAR"}


def zspec(name, dtype, dims=(), num_elems=1, rec_vary=True, **kw):
    s = {"Variable": name, "Data_Type": dtype, "Num_Elements": num_elems, "Rec_Vary": rec_vary,
         "Dim_Sizes": list(dims)}
    s.update(kw)
    return s


def write_types(path, encoding, compress=0, file_compress=0, block=0):
    spec = {"Encoding": encoding, "Majority": "row_major", "Compressed": file_compress,
            "rDim_sizes": [3]}
    w = Writer(path, cdf_spec=spec, delete=True)
    w.write_globalattrs({"Project": {0: "HAPI test"}, "Mission_group": {0: "tests", 1: "second entry"},
                         "Numbers": {0: [[1.5, 2.5], "CDF_DOUBLE"]}})
    extra = {"Compress": compress}
    if block:
        extra["Block_Factor"] = block
    w.write_var(zspec("Epoch", 33, **extra), var_attrs={"VAR_TYPE": "support_data", "UNITS": "ns",
                "FILLVAL": [-9223372036854775808, "CDF_TIME_TT2000"]}, var_data=LEAP_TT2000)
    w.write_var(zspec("epoch_ms", 31, **extra), var_attrs={"FILLVAL": [-1e31, "CDF_EPOCH"]}, var_data=EPOCHS)
    # Uncompressed, so that patch_epoch16 can fix cdflib's two-records-per-value bug.
    w.write_var(zspec("epoch16", 32, Compress=0), var_data=EPOCH16S)
    for name, code, npt, vals in TYPED:
        fill = None if code in (21, 22, 44, 45) and False else vals[0]
        w.write_var(zspec(name, code, **extra), var_attrs=common_attrs(name, TYPE_NAMES[code], fill),
                    var_data=np.array(vals, dtype=npt))
    # Arrays: a vector of 3 per record, a 2x3 matrix, a text vector.
    vec = np.arange(N * 3, dtype=np.float64).reshape(N, 3) * 1.25
    w.write_var(zspec("vec3", 45, dims=[3], **extra), var_attrs={"DEPEND_1": "labels", "FILLVAL": [-1e31, "CDF_DOUBLE"]},
                var_data=vec)
    mat = (np.arange(N * 6, dtype=np.int32).reshape(N, 2, 3) - 5)
    w.write_var(zspec("mat23", 4, dims=[2, 3], **extra), var_data=mat)
    w.write_var(zspec("labels", 51, dims=[3], num_elems=4, rec_vary=False), var_data=np.array([["Bx", "By", "Bz"]]))
    w.write_var(zspec("text", 51, num_elems=8, **extra), var_data=["alpha", "beta", "", "deltadel"])
    w.write_var(zspec("utext", 52, num_elems=3, **extra), var_data=["a", "bc", "def", "gh"])
    w.write_var(zspec("nrv", 45, rec_vary=False), var_data=np.array([42.0]))
    # An rVariable over the file's rDimensions [3], varying.
    w.write_var({"Variable": "rvar", "Data_Type": 4, "Num_Elements": 1, "Rec_Vary": True, "Var_Type": "rVariable",
                 "Dim_Vary": [True]}, var_data=np.arange(N * 3, dtype=np.int32).reshape(N, 3))
    w.write_var(zspec("empty", 45), var_data=None)
    w.close()


def write_colmajor(path, encoding):
    w = Writer(path, cdf_spec={"Encoding": encoding, "Majority": "column_major"}, delete=True)
    w.write_var(zspec("mat23", 4, dims=[2, 3]), var_data=np.arange(5 * 6, dtype=np.int32).reshape(5, 2, 3))
    w.write_var(zspec("cube234", 45, dims=[2, 3, 4], Compress=6),
                var_data=np.arange(3 * 24, dtype=np.float64).reshape(3, 2, 3, 4) / 8)
    w.write_var(zspec("vec4", 21, dims=[4]), var_data=np.arange(3 * 4, dtype=np.float32).reshape(3, 4))
    w.close()


def write_sparse(path, encoding):
    w = Writer(path, cdf_spec={"Encoding": encoding}, delete=True)
    recs = [1, 2, 5, 9]
    data = np.array([10.0, 20.0, 50.0, 90.0])
    w.write_var(zspec("pad", 45, Sparse="pad_sparse"), var_data=[recs, data])
    if encoding == 6:
        w.write_var(zspec("pad_set", 45, Sparse="pad_sparse", Pad=np.array([-99.0])), var_data=[recs, data])
    w.write_var(zspec("prev", 45, Sparse="prev_sparse"), var_data=[recs, data])
    w.write_var(zspec("pad_default", 4, Sparse="pad_sparse"), var_data=[recs, np.array([1, 2, 5, 9], dtype=np.int32)])
    # cdflib's reader pads only the first value of a virtual record of an array (the
    # Rust test checks this variable's pads itself); its written records are compared.
    w.write_var(zspec("pad_vec", 21, dims=[2], Sparse="pad_sparse"),
                var_data=[[0, 3], np.array([[1, 2], [3, 4]], dtype=np.float32)])
    w.close()


def write_sorted(path, n, compress, block):
    """A sorted TT2000 epoch at 1 s from 2016-12-31T12:00 (crossing the leap second) and data."""
    w = Writer(path, cdf_spec={"Encoding": 6}, delete=True)
    t0 = tt(2016, 12, 31, 12, 0, 0, 0, 0, 0)
    epoch = t0 + np.arange(n, dtype=np.int64) * NS
    w.write_var(zspec("Epoch", 33, Compress=compress, Block_Factor=block), var_data=epoch)
    w.write_var(zspec("B", 21, dims=[3], Compress=compress, Block_Factor=block),
                var_data=(np.arange(n * 3, dtype=np.float32).reshape(n, 3)))
    w.close()


def write_day(path):
    """About 26 MB: 86400 records at 1 s of an epoch, a vector, a 32-bin spectrum, a flag."""
    n = 86400
    w = Writer(path, cdf_spec={"Encoding": 6}, delete=True)
    t0 = tt(2024, 1, 1, 0, 0, 0, 0, 0, 0)
    w.write_var(zspec("Epoch", 33, Compress=0), var_data=t0 + np.arange(n, dtype=np.int64) * NS,
                var_attrs={"VAR_TYPE": "support_data"})
    rng = np.random.default_rng(1)
    w.write_var(zspec("B_GSE", 45, dims=[3], Compress=0), var_data=rng.normal(size=(n, 3)),
                var_attrs={"DEPEND_0": "Epoch", "UNITS": "nT"})
    w.write_var(zspec("spectrum", 45, dims=[32], Compress=0), var_data=rng.random(size=(n, 32)),
                var_attrs={"DEPEND_0": "Epoch"})
    w.write_var(zspec("flag", 4, Compress=0), var_data=np.zeros(n, dtype=np.int32),
                var_attrs={"DEPEND_0": "Epoch"})
    w.close()


def zvdr_by_name(b, name):
    gdr = int.from_bytes(b[20:28], "big")
    at = int.from_bytes(b[gdr + 20:gdr + 28], "big")
    while at:
        vname = bytes(b[at + 84:at + 84 + 256]).split(b"\0")[0].decode()
        if vname == name:
            return at
        at = int.from_bytes(b[at + 12:at + 20], "big")
    raise KeyError(name)


def patch_epoch16(path, name, values, big):
    """cdflib 1.3.16 writes each EPOCH16 value as two records, (s, 0) and (ps, 0): rewrite
    the VVR as one record (s, ps) per value and set MaxRec and the VXR's Last to match."""
    b = bytearray(open(path, "rb").read())
    vdr = zvdr_by_name(b, name)
    n = len(values)
    b[vdr + 24:vdr + 28] = (n - 1).to_bytes(4, "big", signed=True)
    vxr = int.from_bytes(b[vdr + 28:vdr + 36], "big")
    n_entries = int.from_bytes(b[vxr + 20:vxr + 24], "big")
    b[vxr + 24:vxr + 28] = (1).to_bytes(4, "big")  # one used entry
    b[vxr + 28 + 4 * n_entries:vxr + 32 + 4 * n_entries] = (n - 1).to_bytes(4, "big")
    vvr = int.from_bytes(b[vxr + 28 + 8 * n_entries:vxr + 36 + 8 * n_entries], "big")
    assert int.from_bytes(b[vvr + 8:vvr + 12], "big") == 7, "epoch16 must be a plain VVR"
    o = ">" if big else "<"
    payload = b"".join(struct.pack(o + "dd", v.real, v.imag) for v in values)
    b[vvr + 12:vvr + 12 + len(payload)] = payload
    open(path, "wb").write(bytes(b))


def write_small(path, file_compress):
    """The base of the hostile-file tests (committed as tests/fixtures/small*.cdf): a
    plain epoch in two VVRs, a gzip vector in four CVVRs, text, attributes."""
    w = Writer(path, cdf_spec={"Encoding": 6, "Compressed": file_compress}, delete=True)
    w.write_globalattrs({"Project": {0: "hostile base"}})
    t0 = tt(2016, 12, 31, 23, 59, 50, 0, 0, 0)
    epoch = t0 + np.arange(20, dtype=np.int64) * NS
    w.write_var(zspec("Epoch", 33, Compress=0), var_attrs={"VAR_TYPE": "support_data"}, var_data=epoch[:10])
    w.write_var(zspec("B", 44, dims=[3], Compress=6, Block_Factor=5),
                var_attrs={"DEPEND_0": "Epoch", "FILLVAL": [-1e31, "CDF_FLOAT"], "UNITS": "nT"},
                var_data=np.arange(60, dtype=np.float32).reshape(20, 3))
    w.write_var(zspec("label", 51, num_elems=6, Compress=0), var_data=["one", "two", "three"])
    w.close()


def patch_allocated(src, dst):
    """Claims 1,024 allocated records in the first VXR entry of `Epoch` (as NASA's library
    leaves them): the VXR's Last grows past MaxRec, the data stays as written."""
    b = bytearray(open(src, "rb").read())
    # Walk from the GDR to the first zVDR (the Epoch variable), then its VXR head.
    gdr = int.from_bytes(b[20:28], "big")
    zvdr = int.from_bytes(b[gdr + 20:gdr + 28], "big")
    vxr = int.from_bytes(b[zvdr + 28:zvdr + 36], "big")
    n_entries = int.from_bytes(b[vxr + 20:vxr + 24], "big")
    last_at = vxr + 28 + 4 * n_entries
    b[last_at:last_at + 4] = (1023).to_bytes(4, "big")
    open(dst, "wb").write(bytes(b))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if "--day" in sys.argv:
        write_day(os.path.join(out, "day.cdf"))
        return
    files = {}

    def add(name, fn, *args):
        p = os.path.join(out, name)
        fn(p, *args)
        if fn is write_types and (args + (0, 0, 0))[2] == 0:
            patch_epoch16(p, "epoch16", EPOCH16S, args[0] in (1, 2))
        files[name] = read_back(p)

    add("types_le.cdf", write_types, 6)
    add("types_be.cdf", write_types, 1)
    add("types_gzip.cdf", write_types, 6, 6, 0, 2)
    add("types_gzip_be.cdf", write_types, 2, 9, 0, 3)
    add("types_whole.cdf", write_types, 6, 0, 6)
    add("colmajor_le.cdf", write_colmajor, 6)
    add("colmajor_be.cdf", write_colmajor, 1)
    add("sparse.cdf", write_sparse, 6)
    add("sparse_be.cdf", write_sparse, 1)
    # cdflib's reader decodes pad values little-endian even in a big-endian file, so the
    # virtual records of sparse_be.cdf are taken from its reading of sparse.cdf (the same
    # variables, little-endian); the written records must agree between the two.
    for name, var in files["sparse_be.cdf"]["variables"].items():
        le = files["sparse.cdf"]["variables"][name]["values"]
        written = {"pad_vec": [0, 3]}.get(name, [1, 2, 5, 9])
        per = len(le) // var["records"]
        for r in written:
            assert var["values"][r * per:(r + 1) * per] == le[r * per:(r + 1) * per], name
        var["values"] = le
    add("sorted.cdf", write_sorted, 50000, 0, 0)
    add("sorted_gzip.cdf", write_sorted, 50000, 6, 1000)
    add("small.cdf", write_small, 0)
    add("small_whole.cdf", write_small, 6)
    patch_allocated(os.path.join(out, "types_le.cdf"), os.path.join(out, "allocated.cdf"))
    # cdflib's reader does not clamp to MaxRec (it fails on this file), so the reference
    # is its reading of the file before the patch, which holds the same records.
    files["allocated.cdf"] = files["types_le.cdf"]
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(files, f)


if __name__ == "__main__":
    main()
