"""Benchmark: swe_hapi's binary -> numpy path against hapiclient's csv path, for the
same records from the same local server.

    .venv/bin/python clients/python/bench/bench_decode.py [--records 500000] [--runs 3]

It writes a dataset (Time + 8 doubles + one integer, like SWE's NGRM records), ingests
it into a fresh data directory, serves it open (hapiclient sends no token) with the
limits raised so that each client makes one request, and times whole calls, from the
request to the array in hand, best of --runs:
  - swe_hapi   get_hapi_data(format="binary")  -> numpy structured array, datetime64[ns]
  - hapiclient hapi(format="csv", cache=False) -> its numpy array (times as bytes)
  - hapiclient hapi(format="binary")           (for reference)
and, apart, swe_hapi's decoding alone (the body already in memory).
The server binary is $HAPI_SERVER_BIN, else target/release/hapi-server, else target/debug.
Only 127.0.0.1 is contacted.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients" / "python"))
import numpy as np  # noqa: E402
import swe_hapi  # noqa: E402

INFO = {"parameters": [{"name": "Time", "type": "isotime", "units": "UTC", "fill": None, "length": 24}]
        + [{"name": f"f{k}", "type": "double", "units": "cm^-2 s^-1 sr^-1", "fill": "-1e31"} for k in range(8)]
        + [{"name": "q", "type": "integer", "units": None, "fill": "-1"}],
        "startDate": "2020-01-01T00:00Z", "cadence": "PT1S"}
T0 = 1577836800


def server_bin():
    for b in (os.environ.get("HAPI_SERVER_BIN"), ROOT / "target/release/hapi-server", ROOT / "target/debug/hapi-server"):
        if b and Path(b).exists():
            return str(b)
    sys.exit("no hapi-server binary: cargo build --release --bin hapi-server")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n = a.records
    binary = server_bin()
    tmp = Path(tempfile.mkdtemp(prefix="hapi-bench-"))
    (tmp / "info.json").write_text(json.dumps(INFO))
    cfg = tmp / "hapi.toml"
    cfg.write_text(f'data_dir = "{tmp / "data"}"\n[limits]\nmax_elements = 1000000000\nmax_bytes = 100000000000\n'
                   '[auth]\nmode = "open"\n[[dataset]]\nid = "bench"\ntitle = "bench"\ninfo_file = "info.json"\n')
    with open(tmp / "r.csv", "w") as f:
        for k in range(n):
            t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + k))
            vals = ",".join(repr(k * 0.5 + j * 1e-3) for j in range(8))
            f.write(f"{t}.000Z,{vals},{k % 1000}\n")
    subprocess.run([binary, "ingest", "--config", str(cfg), "--dataset", "bench", str(tmp / "r.csv")],
                   check=True, stderr=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/hapi"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/capabilities", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        start, stop = swe_hapi.format_time(T0 * 10**9), swe_hapi.format_time((T0 + n) * 10**9)
        from hapiclient import hapi

        def best(fn):
            times = []
            for _ in range(a.runs):
                t = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t)
            return min(times), out

        c = swe_hapi.HapiClient(server=url)
        t_ours, ours = best(lambda: c.get_hapi_data("bench", start, stop))
        t_csv, (hc, _) = best(lambda: hapi(url, "bench", "", start, stop, format="csv", cache=False, logging=False))
        t_bin, (hb, _) = best(lambda: hapi(url, "bench", "", start, stop, format="binary", cache=False, logging=False))
        assert len(ours) == len(hc) == len(hb) == n
        assert np.array_equal(ours["f3"], hc["f3"]) and np.array_equal(ours["q"], hb["q"])
        # Decoding alone: the body already in memory.
        with urllib.request.urlopen(f"{url}/data?dataset=bench&start={start}&stop={stop}&format=binary") as r:
            body = r.read()
        raw_dtype = swe_hapi._binary_dtype(INFO["parameters"])
        t_dec, _ = best(lambda: swe_hapi._finish(np.frombuffer(body, dtype=raw_dtype), INFO["parameters"]))
        mb = len(body) / 1e6
        print(f"records: {n:,} ({mb:.1f} MB binary), server {binary}, best of {a.runs}")
        print(f"swe_hapi binary -> numpy      {t_ours:8.3f} s  {n / t_ours / 1e6:6.2f} M records/s")
        print(f"hapiclient csv                {t_csv:8.3f} s  {n / t_csv / 1e6:6.2f} M records/s"
              f"  ({t_csv / t_ours:.1f}x slower)")
        print(f"hapiclient binary             {t_bin:8.3f} s  {n / t_bin / 1e6:6.2f} M records/s"
              f"  ({t_bin / t_ours:.1f}x slower)")
        print(f"swe_hapi decoding alone       {t_dec:8.3f} s  {n / t_dec / 1e6:6.2f} M records/s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
