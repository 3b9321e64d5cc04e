"""The client tools of clients/ (the token helpers and the swe_hapi module) against the
real server binary with its built-in issuer, and against a small fake server for the
faults a real one should not produce. Only 127.0.0.1 is ever contacted.

The long-range data lives in one data directory served twice: under the SWE limits
(100,000 data elements per response: more than 20 pieces) and with the limits raised
(one request); the two answers must be equal value for value, and equal to what was
ingested. Tokens live 2 s with no leeway, so long downloads outlive several of them.
"""
import http.server
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
sys.path.insert(0, str(CLIENTS / "python"))
import swe_hapi  # noqa: E402  (the module from the repository, not an installed copy)

BIN = os.environ.get("HAPI_SERVER_BIN", str(ROOT / "target/debug/hapi-server"))

VSIZE = 20
INFO = {
    "parameters": [
        {"name": "Time", "type": "isotime", "units": "UTC", "fill": None, "length": 24},
        {"name": "x", "type": "double", "units": "nT", "fill": "-1e31"},
        {"name": "n", "type": "integer", "units": None, "fill": "-1"},
        {"name": "s", "type": "string", "units": None, "fill": "none", "length": 6},
        {"name": "v", "type": "double", "units": "cm^-2 s^-1", "fill": "-1e31", "size": [VSIZE]},
    ],
    "startDate": "2024-01-01T00:00Z", "stopDate": "2024-01-03T00:00Z", "cadence": "PT1S",
}
T0 = 1704067200  # 2024-01-01T00:00:00Z
N = 90_000        # 24 elements a record: 4,166 records a response, 22 pieces
DATASET = "spase://TEST/NumericalData/long+1"


def record_times():
    # One a second, with a gap of 7 s every 5,000 records.
    return np.array([T0 + k + 7 * (k // 5000) for k in range(N)], dtype=np.int64)


def expected():
    t = record_times()
    k = np.arange(N)
    return {
        "Time": (t * 10**9).astype("datetime64[ns]"),
        "x": k * 0.25 - 1000.5,
        "n": (k * 7919) % 100_003 - 50_000,
        "s": np.array(["ab", "c,d", "éé", "xyz123"])[k % 4],
        "v": (k[:, None] * 1.5 + np.arange(VSIZE)[None, :] * 1e-3),
    }


def iso(sec):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(sec)))


def write_csv(path):
    e = expected()
    with open(path, "w") as f:
        for k in range(N):
            s = e["s"][k]
            s = f'"{s}"' if "," in s else s
            vals = ",".join(repr(float(x)) for x in e["v"][k])
            f.write(f"{iso(T0 + k + 7 * (k // 5000))},{float(e['x'][k])!r},{e['n'][k]},{s},{vals}\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, cfg, env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hapi = self.base + "/hapi"
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(cfg), "--listen", f"127.0.0.1:{self.port}"],
            env={**os.environ, **(env or {})}, stderr=subprocess.DEVNULL)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clients")
    (tmp / "info.json").write_text(json.dumps(INFO))
    cfg = tmp / "hapi.toml"
    cfg.write_text(
        f'data_dir = "{tmp / "data"}"\n'
        "[limits]\nmax_elements = 100000\nmax_bytes = 12582912\n"  # the demo's SWE limits
        '[auth]\nmode = "builtin"\n[auth.issuer]\ntoken_ttl = 2\nleeway = 0\n'
        f'[[dataset]]\nid = "{DATASET}"\ntitle = "long"\ninfo_file = "info.json"\n')
    write_csv(tmp / "records.csv")
    subprocess.run([BIN, "ingest", "--config", str(cfg), "--dataset", DATASET, str(tmp / "records.csv")],
                   check=True, stderr=subprocess.DEVNULL)
    out = subprocess.run([BIN, "clients", "create", "--config", str(cfg)], check=True,
                         capture_output=True, text=True).stdout
    creds = dict(line.split("=", 1) for line in out.split())
    limited = Server(cfg)
    raised = Server(cfg, {"HAPI_MAX_ELEMENTS": "1000000000", "HAPI_MAX_BYTES": "100000000000"})
    yield {"limited": limited, "raised": raised, "id": creds["client_id"],
           "secret": creds["client_secret"], "tmp": tmp}
    limited.stop()
    raised.stop()


def client(site, which="limited", **kw):
    return swe_hapi.SWE_HAPI(site["id"], site["secret"], server=site[which].hapi, **kw)


def check_equal(data, e, lo=0, hi=N):
    assert data.dtype.names == ("Time", "x", "n", "s", "v")
    assert data["Time"].dtype == np.dtype("datetime64[ns]")
    assert len(data) == hi - lo
    for name in data.dtype.names:
        assert np.array_equal(data[name], e[name][lo:hi]), name


START, STOP = "2024-01-01T00:00Z", "2024-01-03T00:00Z"


# --- the seed's sequences ---------------------------------------------------------------


def run_bash(script, cwd, env):
    return subprocess.run(["bash", "-c", script], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_seed_bash_sequence(site):
    env = {"CLIENT_ID": site["id"], "CLIENT_SECRET": site["secret"],
           "HAPI_TOKEN_URL": site["limited"].base + "/oauth/token"}
    r = run_bash('ACCESS_TOKEN=$(./get_hapi_access_token.sh -s -i $CLIENT_ID -x $CLIENT_SECRET)\n'
                 f'curl -sS -H "Authorization: Bearer $ACCESS_TOKEN" "{site["limited"].hapi}/catalog"\n',
                 CLIENTS, env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["catalog"] == [{"id": DATASET, "title": "long"}]


SEED_PY = """
import requests
from get_hapi_access_token import *  # the seed writes `import get_hapi_access_token`, then calls the names bare
access_token, access_token_timestamp = get_oauth2_access_token(client_id, client_secret)
if access_token and is_token_valid(access_token, access_token_timestamp):
    auth_header = {"Authorization": f"Bearer {extract_access_token(access_token)}"}
    response = requests.get("%s/catalog", headers=auth_header)
print(response.status_code, response.json()["catalog"][0]["id"])
"""


def test_seed_python_snippet(site):
    code = f"client_id = {site['id']!r}\nclient_secret = {site['secret']!r}\n" + SEED_PY % site["limited"].hapi
    r = subprocess.run([sys.executable, "-c", code], cwd=CLIENTS, capture_output=True, text=True,
                       env={**os.environ, "HAPI_TOKEN_URL": site["limited"].base + "/oauth/token"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["200", DATASET]


def test_token_helpers_validity_margin():
    sys.path.insert(0, str(CLIENTS))
    import get_hapi_access_token as g
    now = time.time()
    assert g.is_token_valid({"access_token": "t", "expires_in": 300}, now)
    assert not g.is_token_valid({"access_token": "t", "expires_in": 300}, now - 275), "30 s margin"
    assert g.is_token_valid({"access_token": "t", "expires_in": 300}, now - 265)
    assert not g.is_token_valid({"access_token": "t", "expires_in": 2}, now - 1.85), "a tenth of 2 s"
    assert not g.is_token_valid(None, now)
    assert g.extract_access_token({"access_token": "abc"}) == "abc"


def test_downloaded_tools_work_as_is(site, tmp_path):
    s = site["limited"]
    for name in ("get_hapi_access_token.sh", "get_hapi_access_token.py", "swe_hapi.py"):
        with urllib.request.urlopen(f"{s.base}/downloads/{name}") as r:  # no token needed
            assert r.headers["Content-Disposition"] == f'attachment; filename="{name}"'
            (tmp_path / name).write_bytes(r.read())
    (tmp_path / "get_hapi_access_token.sh").chmod(0o755)
    # Nothing says where the token endpoint is: the downloads know their server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAPI_")}
    env.update({"CLIENT_ID": site["id"], "CLIENT_SECRET": site["secret"]})
    r = subprocess.run(["bash", "-c",
                        'ACCESS_TOKEN=$(./get_hapi_access_token.sh -s -i $CLIENT_ID -x $CLIENT_SECRET)\n'
                        f'curl -sS -f -H "Authorization: Bearer $ACCESS_TOKEN" "{s.hapi}/catalog"'],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["catalog"][0]["id"] == DATASET
    r = subprocess.run([sys.executable, "get_hapi_access_token.py", "-i", site["id"]], cwd=tmp_path,
                       env={**env, "HAPI_CLIENT_SECRET": site["secret"]}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["token_type"] == "Bearer"
    code = ("import swe_hapi, sys\n"
            "c = swe_hapi.SWE_HAPI(sys.argv[1], sys.argv[2])\n"  # the default server is this one
            f"d = c.get_hapi_data({DATASET!r}, '2024-01-01T00:00Z', '2024-01-01T00:01Z')\n"
            "print(len(d), c.server)\n")
    r = subprocess.run([sys.executable, "-c", code, site["id"], site["secret"]], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["60", s.hapi]


@pytest.mark.parametrize("script", ["get_hapi_access_token.sh", "get_hapi_access_token.py"])
def test_wrong_secret_fails_without_printing_it(site, script):
    secret = "wrong-" + site["secret"][:10]
    cmd = ["bash", script] if script.endswith(".sh") else [sys.executable, script]
    r = subprocess.run(cmd + ["-s", "-i", site["id"], "-x", secret, "-t", site["limited"].base + "/oauth/token"],
                       cwd=CLIENTS, capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "invalid_client" in r.stderr
    assert secret not in r.stderr
    r = subprocess.run(cmd + ["-s", "-i", site["id"], "-t", f"http://127.0.0.1:{free_port()}/oauth/token"],
                       cwd=CLIENTS, capture_output=True, text=True,
                       env={**os.environ, "HAPI_CLIENT_SECRET": secret})
    assert r.returncode == 1 and "cannot get a token" in r.stderr, r.stderr
    assert secret not in r.stderr + r.stdout


# --- the Python class against the real server -----------------------------------------


def test_catalog_info_and_errors(site):
    c = client(site)
    assert c.get_hapi_catalog()["catalog"][0]["id"] == DATASET
    info = c.get_hapi_info(DATASET, ["x", "v"])
    assert [p["name"] for p in info["parameters"]] == ["Time", "x", "v"]
    with pytest.raises(swe_hapi.HapiError) as e:
        c.get_hapi_data("spase://TEST/none", START, STOP)
    assert e.value.code == 1406 and e.value.http_status == 404
    with pytest.raises(swe_hapi.TokenError) as e:
        swe_hapi.SWE_HAPI(site["id"], "wrong", server=site["limited"].hapi).get_hapi_catalog()
    assert e.value.error == "invalid_client"
    assert c.token_fetches == 1


def test_long_range_in_pieces_equals_one_request(site):
    e = expected()
    pieces = []
    limited = client(site).get_hapi_data(DATASET, START, STOP, progress=lambda *a: pieces.append(a))
    assert len(pieces) >= 20, pieces[-1]
    check_equal(limited, e)
    one = []
    raised = client(site, "raised").get_hapi_data(DATASET, START, STOP, progress=lambda *a: one.append(a))
    assert len(one) == 1
    check_equal(raised, e)
    # The same through csv, and a subset in a range that cuts pieces anywhere.
    check_equal(client(site).get_hapi_data(DATASET, START, STOP, format="csv"), e)
    sub = client(site).get_hapi_data(DATASET, "2024-01-01T03:25:17.5Z", "2024-01-01T20:00:01Z",
                                     parameters="n,v")
    t = record_times()
    lo, hi = np.searchsorted(t, T0 + 3 * 3600 + 25 * 60 + 18), np.searchsorted(t, T0 + 20 * 3600 + 1)
    assert sub.dtype.names == ("Time", "n", "v")
    assert np.array_equal(sub["n"], e["n"][lo:hi]) and np.array_equal(sub["v"], e["v"][lo:hi])


def test_pandas_output(site):
    pd = pytest.importorskip("pandas")
    f = client(site).get_hapi_data(DATASET, START, "2024-01-01T01:00Z", parameters=["x", "v"], output="pandas")
    assert isinstance(f, pd.DataFrame) and len(f) == 3600
    assert list(f.columns[:3]) == ["x", "v[0]", "v[1]"] and f.index.name == "Time"
    assert f["v[19]"].iloc[10] == expected()["v"][10, 19]


def test_token_expiry_during_a_long_download(site):
    c = client(site)
    # Each piece waits: the download takes longer than several 2 s tokens.
    data = c.get_hapi_data(DATASET, START, STOP, progress=lambda *a: time.sleep(0.2))
    check_equal(data, expected())
    assert c.token_fetches >= 2


def test_a_token_refused_as_expired_is_renewed_once(site):
    c = client(site)
    c.get_hapi_catalog()
    c._tokens._renew_at = float("inf")  # our clock believes it; the server will not
    # The server compares whole seconds (now > exp): a 2 s token is refused within 3 s.
    time.sleep(3.2)
    check_equal(c.get_hapi_data(DATASET, START, "2024-01-01T00:10Z"), expected(), 0, 600)
    assert c.token_fetches == 2


def test_hapiclient_with_the_hook(site):
    from hapiclient import hapi
    from hapiclient.util import HAPIError
    s = site["limited"]
    args = (s.hapi, DATASET, "x,v", "2024-01-01T00:00Z", "2024-01-01T01:00Z")
    with pytest.raises(HAPIError):
        hapi(*args, format="binary", cache=False, logging=False)  # hapiclient alone: 401
    c = client(site)
    undo = c.hook_hapiclient()
    try:
        data, meta = hapi(*args, format="binary", cache=False, logging=False)
        time.sleep(2.1)  # the token expires: the hook fetches another
        data2, _ = hapi(*args, format="csv", cache=False, logging=False)
    finally:
        undo()
    e = expected()
    assert meta["status"]["code"] == 1200 and len(data) == 3600
    assert np.array_equal(data["x"], e["x"][:3600]) and np.array_equal(data["v"], e["v"][:3600])
    assert np.array_equal(data2["x"], e["x"][:3600])
    assert c.token_fetches >= 2
    with pytest.raises(HAPIError):
        hapi(*args, format="binary", cache=False, logging=False)  # undone


# --- faults, from a fake server --------------------------------------------------------

FAKE_INFO = {"HAPI": "3.3", "status": {"code": 1200, "message": "OK"},
             "parameters": [{"name": "Time", "type": "isotime", "units": "UTC", "fill": None, "length": 24},
                            {"name": "x", "type": "double", "units": None, "fill": None}],
             "startDate": "2024-01-01T00:00Z", "stopDate": "2024-01-02T00:00Z", "cadence": "PT1M",
             "maxRequestDuration": "PT6H"}


def fake_records(a, b):
    """Binary records, one a minute, of [a, b) (seconds)."""
    first = -(-int(a) // 60) * 60
    return b"".join(struct.pack("<24sd", iso(t).encode(), (t - T0) / 60.0) for t in range(first, int(b), 60)
                    if t < b)


class Fake:
    """A HAPI server on 127.0.0.1 whose /data answers follow `plan`, one entry per
    /data request: "ok", "503", "cut" (half the body, then the connection closes),
    "cut-always", "json", "lying-header", "1408-long" (1408 for pieces over 3 h)."""

    def __init__(self, plan):
        self.plan, self.requests = list(plan), []
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, ctype, body, extra=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path, _, q = self.path.partition("?")
                args = dict(kv.split("=", 1) for kv in q.split("&") if kv)
                if path == "/hapi/info":
                    return self.send(200, "application/json", json.dumps(FAKE_INFO).encode())
                a = swe_hapi.parse_time(urllib.request.unquote(args["start"])) / 1e9
                b = swe_hapi.parse_time(urllib.request.unquote(args["stop"])) / 1e9
                step = fake.plan.pop(0) if len(fake.plan) > 1 else fake.plan[0]
                fake.requests.append((step, a, b))
                params = FAKE_INFO["parameters"]
                if step == "lying-header":
                    params = [params[0], dict(params[1], name="y")]
                header = json.dumps({"HAPI": "3.3", "status": {"code": 1200, "message": "OK"},
                                     "parameters": params, "format": "binary"})
                body = b"#" + header.encode() + b"\n" + fake_records(a, b)
                if step == "503":
                    return self.send(503, "application/json", b'{"HAPI":"3.3","status":{"code":1500,'
                                     b'"message":"busy"}}', [("Retry-After", "1")])
                if step == "json":
                    return self.send(200, "application/json", json.dumps(FAKE_INFO).encode())
                if step == "1408-long" and b - a > 3 * 3600:
                    return self.send(400, "application/json", b'{"HAPI":"3.3","status":{"code":1408,'
                                     b'"message":"Bad request - too much time or data requested"}}')
                if step.startswith("cut"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2 + 3])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if step == "no-length-cut":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[:-5])
                    self.close_connection = True
                    return
                self.send(200, "application/octet-stream", body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hapi"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    made = []

    def make(plan):
        f = Fake(plan)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def fake_client(f, waits=None):
    return swe_hapi.HapiClient(server=f.url, retries=3, backoff=0.01,
                               sleep=(waits.append if waits is not None else time.sleep))


def check_day(data, hours=24):
    n = hours * 60
    assert len(data) == n
    assert np.array_equal(data["x"], np.arange(n, dtype=float))
    assert np.all(np.diff(data["Time"].astype(np.int64)) == 60 * 10**9)


def test_503_with_retry_after_twice_then_data(fake):
    f = fake(["503", "503", "ok"])
    waits = []
    check_day(fake_client(f, waits).get_hapi_data("d", "2024-01-01T00:00Z", "2024-01-02T00:00Z"))
    assert waits == [1.0, 1.0]
    assert [r[0] for r in f.requests] == ["503", "503", "ok", "ok", "ok", "ok"]


def test_connection_cut_in_a_piece_is_fetched_again(fake):
    f = fake(["ok", "cut", "ok"])
    check_day(fake_client(f, []).get_hapi_data("d", "2024-01-01T00:00Z", "2024-01-02T00:00Z"))
    assert [r[0] for r in f.requests] == ["ok", "cut", "ok", "ok", "ok"]
    assert f.requests[1][1:] == f.requests[2][1:], "the cut piece was asked again, whole"


def test_1408_halves_the_piece(fake):
    f = fake(["1408-long"])
    check_day(fake_client(f).get_hapi_data("d", "2024-01-01T00:00Z", "2024-01-02T00:00Z"))
    assert sum(1 for _, a, b in f.requests if b - a <= 3 * 3600) == 8


@pytest.mark.parametrize("step,words", [
    ("cut-always", "the body ended after"),
    ("no-length-cut", "not a whole number"),
    ("json", "where binary"),
    ("lying-header", "differ from /info"),
])
def test_malformed_answers_fail_with_a_message(fake, step, words):
    f = fake([step])
    with pytest.raises(swe_hapi.ResponseError, match=words):
        fake_client(f, []).get_hapi_data("d", "2024-01-01T00:00Z", "2024-01-01T03:00Z")


def test_records_outside_the_piece_fail(fake, monkeypatch):
    f = fake(["ok"])
    # A server that ignores the range: every piece gets the whole day.
    monkeypatch.setattr(sys.modules[__name__], "fake_records",
                        lambda a, b, orig=fake_records: orig(T0, T0 + 86400))
    with pytest.raises(swe_hapi.ResponseError, match="outside the requested range"):
        fake_client(f).get_hapi_data("d", "2024-01-01T00:00Z", "2024-01-01T03:00Z")


def test_time_decoding_matches_the_slow_path():
    times = [b"2024-02-29T23:59:59.999Z", b"1999-12-31T00:00:00.000Z", b"2024-366T12:00:00.5Z"]
    for t in times:
        a = np.array([t], dtype="S24")
        assert swe_hapi._isotimes_to_ns(a)[0] == swe_hapi.parse_time(t)
    mixed = np.array(times, dtype="S24")  # different layouts: the slow path
    assert list(swe_hapi._isotimes_to_ns(mixed)) == [swe_hapi.parse_time(t) for t in times]
    with pytest.raises(swe_hapi.ResponseError):
        swe_hapi._isotimes_to_ns(np.array([b"2024-02-30T00:00:00.000Z"], dtype="S24"))
