"""Interoperability with the real Python client (hapiclient from PyPI).

The server binary is started on a free loopback port with its own data directory,
records are appended with `hapi-server ingest`, and hapiclient must read back exactly
those values in csv and in binary.
"""
import math
import os
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from hapiclient import hapi

BIN = os.environ.get("HAPI_SERVER_BIN", "target/debug/hapi-server")

INFO = """{"parameters":[
  {"name":"Time","type":"isotime","units":"UTC","fill":null,"length":24},
  {"name":"d","type":"double","units":"nT","fill":"-1e31"},
  {"name":"i","type":"integer","units":null,"fill":"-1"},
  {"name":"s","type":"string","units":null,"fill":"none","length":8},
  {"name":"v","type":"double","units":"km","fill":"-1e31","size":[3]}],
  "startDate":"2024-02-28T00:00Z","stopDate":"2024-03-01T00:00Z","cadence":"PT1M"}"""

N = 500


def records():
    rows = []
    for k in range(N):
        t = f"2024-02-28T{k // 60 % 24:02d}:{k % 60:02d}:00.000Z"
        d = -1e31 if k % 97 == 3 else k * 0.125 - 7.5
        s = ["alpha", "beta", "gamma", "a,b"][k % 4]
        v = [k * 1.5, -k * 2.25, 1e-3 * k]
        rows.append((t, d, k - 250, s, v))
    return rows


def to_csv(rows):
    out = []
    for t, d, i, s, v in rows:
        sv = f'"{s}"' if "," in s else s
        out.append(f"{t},{d!r},{i},{sv},{v[0]!r},{v[1]!r},{v[2]!r}")
    return "\n".join(out) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hapi")
    (tmp / "info.json").write_text(INFO)
    cfg = tmp / "hapi.toml"
    cfg.write_text(
        f'data_dir = "{tmp / "data"}"\n'
        # hapiclient sends no credentials: this interop test runs the server open.
        '[auth]\nmode = "open"\n'
        '[[dataset]]\nid = "interop"\ninfo_file = "info.json"\n'
    )
    csv = tmp / "records.csv"
    csv.write_text(to_csv(records()))
    subprocess.run([BIN, "ingest", "--config", str(cfg), "--dataset", "interop", str(csv)], check=True)
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"])
    url = f"http://127.0.0.1:{port}/hapi"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/capabilities", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def check(data, rows, params):
    assert len(data) == len(rows)
    for rec, (t, d, i, s, v) in zip(data, rows):
        assert rec["Time"].decode() == t
        if "d" in params:
            assert rec["d"] == d
        if "i" in params:
            assert rec["i"] == i
        if "s" in params:
            got = rec["s"].decode() if isinstance(rec["s"], bytes) else str(rec["s"])
            assert got == s
        if "v" in params:
            assert list(rec["v"]) == v


@pytest.mark.parametrize("fmt", ["csv", "binary"])
def test_all_parameters(server, fmt):
    data, meta = hapi(server, "interop", "", "2024-02-28T00:00Z", "2024-02-29T00:00Z",
                      format=fmt, cache=False, logging=False)
    assert meta["status"]["code"] == 1200
    check(data, records(), {"d", "i", "s", "v"})


@pytest.mark.parametrize("fmt", ["csv", "binary"])
def test_subset_and_range(server, fmt):
    data, _ = hapi(server, "interop", "i,v", "2024-02-28T01:00Z", "2024-02-28T02:00Z",
                   format=fmt, cache=False, logging=False)
    check(data, records()[60:120], {"i", "v"})
    assert data.dtype.names == ("Time", "i", "v")


def test_fill_is_reported(server):
    data, meta = hapi(server, "interop", "d", "2024-02-28T00:00Z", "2024-02-28T00:10Z",
                      format="binary", cache=False, logging=False)
    assert meta["parameters"][1]["fill"] == "-1e31"
    assert data["d"][3] == -1e31
    assert not math.isnan(data["d"][4])
    assert np.all(data["d"][:3] == [-7.5, -7.375, -7.25])
