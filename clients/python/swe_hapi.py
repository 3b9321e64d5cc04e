"""A HAPI client for servers behind OAuth2 machine-to-machine tokens, such as ESA's
SWE HAPI Server: the token is handled for you, and any time range is fetched in
pieces the server accepts.

    from swe_hapi import SWE_HAPI            # or HapiClient, the same class
    swe_hapi = SWE_HAPI(client_id, client_secret, server="https://hapi.example.org/hapi")
    catalog = swe_hapi.get_hapi_catalog()
    info = swe_hapi.get_hapi_info(dataset)
    data = swe_hapi.get_hapi_data(dataset, "2026-03-01T00:00Z", "2026-03-25T12:05:00Z")
    frame = swe_hapi.get_hapi_data(dataset, start, stop, output="pandas")

    from hapiclient import hapi
    swe_hapi.hook_hapiclient()               # hapiclient.hapi() now sends the token

One file, standard library plus numpy (pandas only for ``output="pandas"``): it can be
copied beside a script as it is, or installed with pip.

What it guarantees: ``get_hapi_data`` returns exactly the records of [start, stop), or
raises. Every piece is checked (the data header against /info, a whole number of
records, times inside the piece and in order, a complete body); nothing malformed
becomes output.

A server that offers this file at /downloads fills in its own addresses on the three
DEFAULT_ lines below.
"""

import collections
import email.utils
import http.client
import json
import os
import random
import re
import socket
import threading
import time
import urllib.parse
from datetime import datetime, timezone

import numpy as np

DEFAULT_SERVER = "http://127.0.0.1:8080/hapi"
DEFAULT_TOKEN_URL = "http://127.0.0.1:8080/oauth/token"
DEFAULT_SCOPE = "swe_hapiserver"

__all__ = ["SWE_HAPI", "HapiClient", "HapiClientError", "HapiError", "TokenError", "ResponseError",
           "parse_time", "format_time"]
__version__ = "0.1.0"


# ---------------------------------------------------------------------------------------
# Errors


class HapiClientError(Exception):
    """Anything that stopped a request: the base of this module's errors."""


class HapiError(HapiClientError):
    """The server answered with a HAPI error status (14xx, 15xx)."""

    def __init__(self, code, message, http_status, url):
        said = message if str(message).startswith(f"HAPI error {code}") else f"HAPI error {code}: {message}"
        super().__init__(f"{said} (HTTP {http_status}, {url})")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.url = url


class TokenError(HapiClientError):
    """No usable access token: the token endpoint's OAuth2 error, or a refusal of the token."""

    def __init__(self, message, error=None, http_status=None):
        super().__init__(message)
        self.error = error
        self.http_status = http_status


class ResponseError(HapiClientError):
    """An answer that cannot be right (malformed, truncated, contradicting /info), or a
    failure that persisted through every retry."""


# ---------------------------------------------------------------------------------------
# Times: HAPI's restricted ISO 8601, as int64 nanoseconds since 1970 (what datetime64[ns] holds)

_NS = 1_000_000_000
_TIME_RE = re.compile(
    r"^(\d{4})-(?:(\d{2})-(\d{2})|(\d{3}))"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9})\d*)?)?)?)?Z?$")
_DURATION_RE = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date; works on ints and int64 arrays."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _is_leap(y):
    return (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def parse_time(t):
    """A HAPI time (``2026-03-25T12:00Z``, ``2026-084T12:00:00.5``; str or bytes), a
    ``datetime`` (naive means UTC) or a ``numpy.datetime64``, as int nanoseconds since 1970."""
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[ns]").astype(np.int64))
    if isinstance(t, datetime):
        if t.tzinfo is not None:
            t = t.astimezone(timezone.utc).replace(tzinfo=None)
        days = _days_from_civil(t.year, t.month, t.day)
        return ((days * 86400 + t.hour * 3600 + t.minute * 60 + t.second) * _NS
                + t.microsecond * 1000)
    if isinstance(t, bytes):
        t = t.decode("ascii", "replace")
    if not isinstance(t, str):
        raise TypeError(f"not a time: {t!r}")
    m = _TIME_RE.match(t.strip().rstrip("\0 "))
    if not m:
        raise ValueError(f"not a HAPI time (YYYY-MM-DDThh:mm:ss.sssZ or YYYY-DDDThh:mm:ss.sssZ): {t!r}")
    y, mo, d, doy, hh, mi, ss, frac = m.groups()
    y = int(y)
    if doy is not None:
        doy = int(doy)
        if not 1 <= doy <= 365 + int(_is_leap(y)):
            raise ValueError(f"day of year out of range: {t!r}")
        days = _days_from_civil(y, 1, 1) + doy - 1
    else:
        mo, d = int(mo), int(d)
        if not (1 <= mo <= 12 and 1 <= d <= _MONTH_DAYS[mo] + int(mo == 2 and _is_leap(y))):
            raise ValueError(f"no such date: {t!r}")
        days = _days_from_civil(y, mo, d)
    hh, mi, ss = int(hh or 0), int(mi or 0), int(ss or 0)
    if hh > 24 or mi > 59 or ss > 60 or (hh == 24 and (mi or ss or frac)):
        raise ValueError(f"time of day out of range: {t!r}")
    ns = int((frac or "0").ljust(9, "0"))
    return (days * 86400 + hh * 3600 + mi * 60 + ss) * _NS + ns


def format_time(ns):
    """Nanoseconds since 1970 as ``YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ`` (what this client sends)."""
    s = str(np.datetime64(int(ns), "ns"))
    return s + "Z" if "." in s else s + ".000000000Z"


def _parse_duration(text):
    """An ISO 8601 duration as nanoseconds, months as 28 days and years as 365: never
    longer than the real span, so a piece of that length is always accepted."""
    m = _DURATION_RE.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    scale = (365 * 86400, 28 * 86400, 86400, 3600, 60, 1)
    seconds = sum(float(v) * s for v, s in zip(m.groups(), scale) if v)
    return int(seconds * _NS)


def _isotimes_to_ns(a):
    """A numpy bytes array (``S`` dtype) of HAPI times as int64 nanoseconds.

    Servers write every time of a dataset in one layout (fixed length, one format), so
    the digits are read column by column from a (records x characters) byte matrix;
    every record must share the first one's separators or the slow path parses each."""
    a = np.ascontiguousarray(a)
    n = a.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    width = a.dtype.itemsize
    first = a[0].decode("ascii", "replace").rstrip("\0 ")
    m = _TIME_RE.match(first)
    if m is None:
        raise ResponseError(f"not a HAPI time in the data: {first!r}")
    mat = a.view(np.uint8).reshape(n, width)
    layout = np.frombuffer(a[0].ljust(width, b"\0"), dtype=np.uint8)
    digit = (layout >= 48) & (layout <= 57)
    digits = mat[:, digit]
    same = (np.all(mat[:, ~digit] == layout[~digit])
            and np.all((digits >= 48) & (digits <= 57)))
    if not same:
        return np.array([parse_time(x) for x in a], dtype=np.int64)

    def num(start, length):
        # Column by column: a whole int64 copy of the matrix would take 8 bytes a character.
        out = np.zeros(n, dtype=np.int64)
        for k in range(start, start + length):
            out *= 10
            out += mat[:, k]
            out -= 48
        return out

    if m.group(4) is not None:
        y = num(0, 4)
        doy = num(5, 3)
        pos = 8
        if np.any((doy < 1) | (doy > 365 + _is_leap(y))):
            raise ResponseError("a day of year out of range in the data")
        days = _days_from_civil(y, 1, 1) + doy - 1
    else:
        pos = 10
        # numpy's own date parser is C, checks the calendar, and is several times faster here.
        try:
            days = np.ascontiguousarray(mat[:, :10]).view("S10").ravel().astype("datetime64[D]")
        except ValueError as e:
            raise ResponseError(f"a date out of range in the data: {e}") from None
        days = days.astype(np.int64)
    zero = np.zeros(n, dtype=np.int64)
    hh = num(pos + 1, 2) if m.group(5) else zero
    mi = num(pos + 4, 2) if m.group(6) else zero
    ss = num(pos + 7, 2) if m.group(7) else zero
    frac = zero
    if m.group(8):
        length = len(m.group(8))
        frac = num(pos + 10, length) * 10 ** (9 - length)
    if np.any((hh > 24) | (mi > 59) | (ss > 60) | ((hh == 24) & ((mi > 0) | (ss > 0) | (frac > 0)))):
        raise ResponseError("a time of day out of range in the data")
    return (days * 86400 + hh * 3600 + mi * 60 + ss) * _NS + frac


# ---------------------------------------------------------------------------------------
# HTTP: kept-alive connections, retries with backoff, Retry-After

_RETRY_STATUS = {429, 500, 502, 503, 504}


class _Answer:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower(), "")


class _Transport:
    """One kept-alive connection per origin; ``send`` retries what may pass."""

    def __init__(self, timeout, retries, backoff, max_wait, sleep):
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.sleep = sleep
        self._conns = {}
        self._lock = threading.Lock()

    def close(self):
        with self._lock:
            conns, self._conns = self._conns, {}
        for c in conns.values():
            c.close()

    def _once(self, method, url, headers, body):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise HapiClientError(f"not an http(s) URL: {url}")
        key = (u.scheme, u.netloc)
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        with self._lock:
            conn = self._conns.pop(key, None)
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
                conn = cls(u.hostname, u.port, timeout=self.timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                conn = None
                # A kept-alive connection the server closed while idle: one free retry.
                if not reused:
                    raise
                reused = False
            except BaseException:
                conn.close()
                raise
        try:
            data = resp.read()  # raises IncompleteRead on a short Content-Length or chunked body
        except BaseException:
            conn.close()
            raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            conn.close()
        else:
            with self._lock:
                old = self._conns.pop(key, None)
                self._conns[key] = conn
            if old is not None:
                old.close()
        return _Answer(resp.status, hdrs, data)

    def _wait(self, attempt, answer):
        delay = min(self.max_wait, self.backoff * 2 ** attempt) * (0.75 + 0.25 * random.random())
        after = answer.header("retry-after").strip() if answer is not None else ""
        if after:
            if after.isdigit():
                wanted = float(after)
            else:
                try:
                    wanted = email.utils.parsedate_to_datetime(after).timestamp() - time.time()
                except (TypeError, ValueError):
                    wanted = delay
            if wanted > self.max_wait:
                raise ResponseError(f"the server asks to wait {wanted:.0f} s (Retry-After), "
                                    f"more than max_wait={self.max_wait} s")
            delay = max(0.0, wanted)
        self.sleep(delay)

    def send(self, method, url, headers_fn, body=None):
        """The answer; retries connection errors, truncated bodies, 429 and 5xx. Returns
        the last such answer when retries are exhausted on a status."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                ans = self._once(method, url, headers_fn(), body)
            except (OSError, http.client.HTTPException) as e:
                if last:
                    raise ResponseError(f"no complete answer from {_clean(url)} after "
                                        f"{self.retries + 1} tries: {_describe(e)}") from e
                self._wait(attempt, None)
                continue
            if ans.status in _RETRY_STATUS and not last:
                self._wait(attempt, ans)
                continue
            return ans
        raise AssertionError("unreachable")


def _describe(e):
    if isinstance(e, http.client.IncompleteRead):
        return f"the body ended after {len(e.partial)} bytes, {e.expected} more were announced"
    return f"{type(e).__name__}: {e}"


def _clean(url):
    """A URL for messages: without its query's values beyond the dataset (no secrets are
    ever in one, but messages stay short)."""
    return url.split("?", 1)[0]


# ---------------------------------------------------------------------------------------
# Tokens


class _Tokens:
    """The current access token: fetched on first use, kept, fetched again a margin
    before it expires (client_credentials has no refresh token) or when the server says
    it is invalid. Never per request."""

    MARGIN = 30.0

    def __init__(self, client_id, client_secret, token_url, scope, transport, clock=time.monotonic):
        self._id, self._secret = client_id, client_secret
        self.token_url, self.scope = token_url, scope
        self._transport, self._clock = transport, clock
        self._token, self._renew_at = None, 0.0
        self._lock = threading.Lock()
        #: How many tokens were fetched (tests and curious users read it).
        self.fetches = 0

    def __repr__(self):
        return f"<tokens client_id={self._id!r} token_url={self.token_url!r}>"

    def header(self):
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self, token_header):
        """Forget the token that ``token_header`` carried, unless another thread renewed it."""
        with self._lock:
            if self._token is not None and token_header == f"Bearer {self._token}":
                self._token = None

    def _fetch(self):
        form = urllib.parse.urlencode({
            "client_id": self._id, "client_secret": self._secret,
            "grant_type": "client_credentials", "scope": self.scope,
        }).encode()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        sent = self._clock()
        ans = self._transport.send("POST", self.token_url, lambda: hdrs, form)
        try:
            doc = json.loads(ans.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
        if ans.status != 200:
            if isinstance(doc, dict) and isinstance(doc.get("error"), str):
                desc = doc.get("error_description") or ""
                raise TokenError(f"the token endpoint {self.token_url} refused (HTTP {ans.status}): "
                                 f"{doc['error']}{': ' + desc if desc else ''}",
                                 error=doc["error"], http_status=ans.status)
            raise TokenError(f"the token endpoint {self.token_url} answered HTTP {ans.status} "
                             "without an OAuth2 error", http_status=ans.status)
        if not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str) \
                or not doc["access_token"]:
            raise TokenError(f"the answer of {self.token_url} is not a token response")
        ttype = doc.get("token_type", "Bearer")
        if not isinstance(ttype, str) or ttype.lower() != "bearer":
            raise TokenError(f"the token endpoint gave a {ttype!r} token, not a bearer token")
        life = doc.get("expires_in")
        if isinstance(life, (int, float)) and not isinstance(life, bool) and life > 0:
            self._renew_at = sent + life - min(self.MARGIN, life / 10)
        else:
            self._renew_at = float("inf")  # no expiry given: renewed when the server refuses it
        self._token = doc["access_token"]
        self.fetches += 1


# ---------------------------------------------------------------------------------------
# Decoding


def _param_key(p):
    size = p.get("size")
    return (p.get("name"), p.get("type"), p.get("length"), tuple(size) if size else None)


def _binary_dtype(params):
    fields = []
    for p in params:
        t = p.get("type")
        if t in ("isotime", "string"):
            length = p.get("length")
            if not isinstance(length, int) or length < 1:
                raise ResponseError(f"parameter {p.get('name')!r} ({t}) has no valid length in /info")
            base = f"S{length}"
        elif t == "double":
            base = "<f8"
        elif t == "integer":
            base = "<i4"
        else:
            raise ResponseError(f"parameter {p.get('name')!r} has an unknown type {t!r}")
        size = p.get("size")
        fields.append((p["name"], base, tuple(size)) if size else (p["name"], base))
    return np.dtype(fields)


def _split_header(body):
    """(header dict or None, the data after it) of a response with include=header."""
    if not body.startswith(b"#"):
        return None, body
    pos, lines = 0, []
    while body.startswith(b"#", pos):
        nl = body.find(b"\n", pos)
        if nl < 0:
            raise ResponseError("the data header does not end (no newline after a # line)")
        lines.append(body[pos + 1:nl])
        pos = nl + 1
    try:
        header = json.loads(b"\n".join(lines).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ResponseError(f"the data header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ResponseError("the data header is not a JSON object")
    # A view, not a copy: the data may be tens of MB.
    return header, memoryview(body)[pos:]


def _finish(raw, params, times=None):
    """The structured array callers get: isotimes as datetime64[ns], strings as str.
    ``times``: the first parameter already decoded (the range check did it)."""
    out_fields = []
    for p, name in zip(params, raw.dtype.names):
        sub = raw.dtype.fields[name][0]
        shape = sub.shape
        if p["type"] == "isotime":
            out_fields.append((name, "datetime64[ns]", shape) if shape else (name, "datetime64[ns]"))
        elif p["type"] == "string":
            kind = f"U{p['length']}"
            out_fields.append((name, kind, shape) if shape else (name, kind))
        else:
            out_fields.append((name, sub.base, shape) if shape else (name, sub.base))
    out = np.empty(raw.shape[0], dtype=out_fields)
    for p, name in zip(params, raw.dtype.names):
        col = raw[name]
        if p["type"] == "isotime":
            ns = times if times is not None and name == raw.dtype.names[0] else _isotimes_to_ns(col.reshape(-1))
            out[name] = ns.view("datetime64[ns]").reshape(col.shape)
        elif p["type"] == "string":
            try:
                out[name] = np.char.decode(col, "utf-8")
            except UnicodeDecodeError as e:
                raise ResponseError(f"parameter {name!r} holds bytes that are not UTF-8: {e}") from None
        else:
            out[name] = col
    return out


def _decode_csv(text, params, raw_dtype):
    """HAPI csv rows into the binary layout's structured array (then decoded like it)."""
    import csv
    import io
    if text and not text.endswith("\n"):
        raise ResponseError("the csv body does not end with a newline: it was cut")
    widths = [int(np.prod(p.get("size") or [1])) for p in params]
    total = sum(widths)
    rows = list(csv.reader(io.StringIO(text)))
    out = np.zeros(len(rows), dtype=raw_dtype)
    cols = [[] for _ in range(total)]
    for k, r in enumerate(rows):
        if len(r) != total:
            raise ResponseError(f"csv record {k + 1} has {len(r)} values, {total} expected")
        for j, v in enumerate(r):
            cols[j].append(v)
    j = 0
    for p, w in zip(params, widths):
        name = p["name"]
        block = np.array(cols[j:j + w], dtype=object).T if rows else np.zeros((0, w), dtype=object)
        j += w
        try:
            if p["type"] in ("isotime", "string"):
                cells = [[x.encode("utf-8") for x in r] for r in block]
                if any(len(x) > p["length"] for r in cells for x in r):
                    raise ResponseError(f"parameter {name!r}: a value longer than its length "
                                        f"{p['length']} in /info")
                enc = np.array(cells, dtype=out.dtype[name].base)
            elif p["type"] == "double":
                enc = block.astype(np.float64)
            else:
                enc = block.astype(np.int64)
                if np.any((enc < -2**31) | (enc >= 2**31)):
                    raise ResponseError(f"parameter {name!r}: an integer out of the 32-bit range")
        except ValueError as e:
            raise ResponseError(f"parameter {name!r}: a value that is not a {p['type']}: {e}") from None
        out[name] = enc.reshape((len(rows),) + out.dtype[name].shape)
    return out


def _to_pandas(arr, params):
    import pandas as pd
    time_name = arr.dtype.names[0]
    cols = {}
    for name in arr.dtype.names[1:]:
        col = arr[name]
        if col.ndim == 1:
            cols[name] = col
        else:
            flat = col.reshape(col.shape[0], -1)
            for k in range(flat.shape[1]):
                idx = np.unravel_index(k, col.shape[1:])
                cols[f"{name}[{','.join(map(str, idx))}]"] = flat[:, k]
    return pd.DataFrame(cols, index=pd.DatetimeIndex(arr[time_name], name=time_name))


# ---------------------------------------------------------------------------------------
# The client


class HapiClient:
    """A HAPI server, and machine-to-machine credentials for it (``client_id`` and
    ``client_secret``; both ``None`` for an open server).

    ``server`` is the HAPI base URL (ending in ``/hapi``). ``token_url`` defaults to
    ``$HAPI_TOKEN_URL``, else to ``DEFAULT_TOKEN_URL`` for the default server, else to the
    ``token_endpoint`` of the server's discovery document
    (``.../.well-known/openid-configuration`` beside ``/hapi``, as the built-in issuer
    publishes it). Connection errors, truncated answers, 429 and 5xx are retried up to
    ``retries`` times, waiting ``backoff`` s doubled each time (at most ``max_wait``) or
    what ``Retry-After`` says.
    """

    def __init__(self, client_id=None, client_secret=None, server=None, token_url=None,
                 scope=None, timeout=60.0, retries=5, backoff=0.5, max_wait=120.0,
                 sleep=time.sleep):
        self.server = (server or os.environ.get("HAPI_SERVER") or DEFAULT_SERVER).rstrip("/")
        self._transport = _Transport(timeout, retries, backoff, max_wait, sleep)
        if (client_id is None) != (client_secret is None):
            raise ValueError("give both client_id and client_secret, or neither (an open server)")
        self._tokens = None
        if client_id is not None:
            self._tokens = _Tokens(client_id, client_secret, token_url, scope or DEFAULT_SCOPE,
                                   self._transport)

    def __repr__(self):
        return f"<{type(self).__name__} server={self.server!r}>"

    def close(self):
        """Closes the kept-alive connections."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def token_fetches(self):
        """How many access tokens this client has fetched."""
        return self._tokens.fetches if self._tokens else 0

    # -- auth -------------------------------------------------------------------------

    def _token_url(self):
        t = self._tokens
        if t.token_url is None:
            t.token_url = os.environ.get("HAPI_TOKEN_URL") or (
                DEFAULT_TOKEN_URL if self.server == DEFAULT_SERVER.rstrip("/") else self._discover())
        return t.token_url

    def _discover(self):
        base = self.server[:-len("/hapi")] if self.server.endswith("/hapi") else self.server
        url = base + "/.well-known/openid-configuration"
        ans = self._transport.send("GET", url, lambda: {"Accept": "application/json"})
        try:
            endpoint = json.loads(ans.body.decode("utf-8"))["token_endpoint"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            endpoint = None
        if ans.status != 200 or not isinstance(endpoint, str):
            raise TokenError(f"no token endpoint known for {self.server}: give token_url= "
                             f"(or set HAPI_TOKEN_URL); {url} gave none (HTTP {ans.status})")
        return endpoint

    def _headers(self, accept):
        h = {"Accept": accept, "Accept-Encoding": "identity",
             "User-Agent": f"swe_hapi/{__version__} (python)"}
        if self._tokens is not None:
            self._token_url()
            h.update(self._tokens.header())
        return h

    def _get(self, url, accept):
        """One GET with retries and one token renewal on 401 invalid_token."""
        for renewed in (False, True):
            sent = {}

            def headers():
                sent.clear()
                sent.update(self._headers(accept))
                return sent

            ans = self._transport.send("GET", url, headers)
            if ans.status != 401:
                return ans
            challenge = ans.header("www-authenticate")
            if self._tokens is None:
                raise TokenError(f"{_clean(url)} needs credentials (HTTP 401): give client_id "
                                 "and client_secret", http_status=401)
            if renewed or "invalid_token" not in challenge:
                raise TokenError(f"{_clean(url)} refused the access token (HTTP 401): "
                                 f"{challenge or 'no WWW-Authenticate'}",
                                 error="invalid_token", http_status=401)
            # Expired or revoked before our clock said so: fetch a new one, once.
            self._tokens.invalidate(sent.get("Authorization"))
        raise AssertionError("unreachable")

    def _url(self, endpoint, query):
        q = "&".join(f"{k}={urllib.parse.quote(str(v), safe=',:')}" for k, v in query.items()
                     if v is not None)
        return f"{self.server}/{endpoint}" + (f"?{q}" if q else "")

    def _status_of(self, ans, url):
        """A HAPI error for a non-200 answer, from its JSON status when it has one."""
        doc = None
        try:
            doc = json.loads(ans.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
        st = doc.get("status") if isinstance(doc, dict) else None
        if ans.status == 403:
            raise TokenError(f"{_clean(url)}: access refused (HTTP 403): "
                             f"{ans.header('www-authenticate') or (st or {}).get('message', '')}",
                             error="insufficient_scope", http_status=403)
        if isinstance(st, dict) and isinstance(st.get("code"), int):
            return HapiError(st["code"], st.get("message", ""), ans.status, _clean(url))
        return ResponseError(f"{_clean(url)}: HTTP {ans.status} without a HAPI status in the body")

    def _json(self, endpoint, query):
        url = self._url(endpoint, query)
        ans = self._get(url, "application/json")
        if ans.status != 200:
            raise self._status_of(ans, url)
        if "json" not in ans.header("content-type"):
            raise ResponseError(f"{_clean(url)}: a {ans.header('content-type') or 'untyped'} answer "
                                "where JSON was expected")
        try:
            doc = json.loads(ans.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ResponseError(f"{_clean(url)}: the body is not JSON: {e}") from None
        st = doc.get("status") if isinstance(doc, dict) else None
        if not isinstance(st, dict) or st.get("code") != 1200:
            if isinstance(st, dict) and isinstance(st.get("code"), int):
                raise HapiError(st["code"], st.get("message", ""), ans.status, _clean(url))
            raise ResponseError(f"{_clean(url)}: the answer has no HAPI status")
        return doc

    # -- the seed's three methods ----------------------------------------------------

    def get_hapi_catalog(self):
        """/catalog, as a dict (its ``catalog`` lists the datasets)."""
        return self._json("catalog", {})

    def get_hapi_info(self, dataset, parameters=None):
        """/info of ``dataset`` (optionally only ``parameters``: a list or "a,b"), as a dict."""
        return self._json("info", {"dataset": dataset, "parameters": _param_list(parameters)})

    def get_hapi_data(self, dataset, start, stop, parameters=None, format="binary", output="numpy",
                      progress=None):
        """The records of ``dataset`` in [``start``, ``stop``) (HAPI times, ``datetime`` or
        ``numpy.datetime64``), for ``parameters`` (a list or "a,b"; default all).

        Returns a numpy structured array (the time parameter first, isotimes as
        ``datetime64[ns]``, strings as ``str``), or with ``output="pandas"`` a DataFrame
        indexed by time (array parameters as one column per element, ``name[i]``).

        Any range: it is split by the dataset's ``maxRequestDuration``, and a piece the
        server still refuses with 1408 (too much data) is halved until it fits. The
        pieces are contiguous and stop-exclusive, so they join without duplicates or
        gaps. ``format`` is ``binary`` (fast, the default) or ``csv``. ``progress``, if
        given, is called after every piece as ``progress(pieces_done, pieces_known, records)``.
        """
        if format not in ("binary", "csv"):
            raise ValueError("format must be 'binary' or 'csv'")
        if output not in ("numpy", "pandas"):
            raise ValueError("output must be 'numpy' or 'pandas'")
        params = _param_list(parameters)
        t0, t1 = parse_time(start), parse_time(stop)
        if t1 <= t0:
            raise ValueError("stop must be after start")
        info = self.get_hapi_info(dataset, params)
        pinfo = info.get("parameters")
        if not isinstance(pinfo, list) or not pinfo or pinfo[0].get("type") != "isotime":
            raise ResponseError("/info has no parameters, or the first is not the isotime")
        raw_dtype = _binary_dtype(pinfo)
        piece = None
        if info.get("maxRequestDuration"):
            try:
                piece = _parse_duration(info["maxRequestDuration"])
            except ValueError as e:
                raise ResponseError(f"/info: {e}") from None
        todo = collections.deque()
        a = t0
        while a < t1:
            b = t1 if piece is None or piece <= 0 else min(t1, a + piece)
            todo.append((a, b))
            a = b
        parts, times, done, records = [], [], 0, 0
        while todo:
            a, b = todo.popleft()
            try:
                raw, t = self._piece(dataset, params, a, b, format, pinfo, raw_dtype)
            except HapiError as e:
                if e.code != 1408 or b - a < 2:
                    raise
                mid = a + (b - a) // 2
                todo.appendleft((mid, b))
                todo.appendleft((a, mid))
                continue
            parts.append(raw)
            times.append(t)
            done += 1
            records += raw.shape[0]
            if progress is not None:
                progress(done, done + len(todo), records)
        one = len(parts) == 1
        raw = parts[0] if one else np.concatenate(parts)
        arr = _finish(raw, pinfo, times[0] if one else np.concatenate(times))
        return _to_pandas(arr, pinfo) if output == "pandas" else arr

    def _piece(self, dataset, params, a, b, fmt, pinfo, raw_dtype):
        """One /data request for [a, b), checked: (the records in the binary layout, their times)."""
        url = self._url("data", {"dataset": dataset, "parameters": params, "start": format_time(a),
                                 "stop": format_time(b), "format": fmt, "include": "header"})
        accept = "application/octet-stream" if fmt == "binary" else "text/csv"
        ans = self._get(url, accept)
        if ans.status != 200:
            raise self._status_of(ans, url)
        ctype = ans.header("content-type").split(";")[0].strip().lower()
        if ctype != accept:
            raise ResponseError(f"{_clean(url)}: a {ctype or 'untyped'} answer where {fmt} "
                                f"({accept}) was asked")
        enc = ans.header("content-encoding").strip().lower()
        if enc not in ("", "identity"):
            raise ResponseError(f"{_clean(url)}: an answer in {enc} encoding, which was not asked")
        header, data = _split_header(ans.body)
        if header is None:
            raise ResponseError(f"{_clean(url)}: the answer has no data header (include=header was asked)")
        st = header.get("status")
        code = st.get("code") if isinstance(st, dict) else None
        if code not in (1200, 1201):
            raise ResponseError(f"{_clean(url)}: the data header's status is {st!r}")
        got = header.get("parameters")
        if not isinstance(got, list) or [_param_key(p) for p in got if isinstance(p, dict)] \
                != [_param_key(p) for p in pinfo]:
            raise ResponseError(f"{_clean(url)}: the data header's parameters differ from /info "
                                "(names, types, lengths or sizes)")
        if fmt == "binary":
            if len(data) % raw_dtype.itemsize:
                raise ResponseError(f"{_clean(url)}: {len(data)} bytes of binary data are not a whole "
                                    f"number of {raw_dtype.itemsize}-byte records: the answer was cut "
                                    "or does not match /info")
            raw = np.frombuffer(data, dtype=raw_dtype)
        else:
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ResponseError(f"{_clean(url)}: the csv is not UTF-8: {e}") from None
            raw = _decode_csv(text, pinfo, raw_dtype)
        if code == 1201 and raw.shape[0]:
            raise ResponseError(f"{_clean(url)}: the header says 1201 (no data) but records follow")
        times = _isotimes_to_ns(raw[raw_dtype.names[0]])
        if times.size:
            if times[0] < a or times[-1] >= b:
                raise ResponseError(f"{_clean(url)}: records outside the requested range "
                                    f"[{format_time(a)}, {format_time(b)})")
            if np.any(times[1:] < times[:-1]):
                raise ResponseError(f"{_clean(url)}: records out of time order")
        return raw, times

    # -- hapiclient -------------------------------------------------------------------

    def hook_hapiclient(self):
        """Makes ``hapiclient.hapi()`` send this client's token to this server, renewed as
        needed; other hosts get no token. Returns a function that undoes it.

        hapiclient 0.3.3 sends every request through ``hapiclient.util.urlopen``, which
        builds a new ``urllib3.PoolManager()`` each time: the hook swaps that class for a
        subclass that adds the ``Authorization`` header to URLs under ``server``.
        """
        import urllib3
        if self._tokens is None:
            raise ValueError("an open server needs no hook (no client_id given)")
        client = self
        original = urllib3.PoolManager
        ours = urllib.parse.urlsplit(self.server)

        class TokenPoolManager(original):
            def urlopen(self, method, url, redirect=True, **kw):
                u = urllib.parse.urlsplit(url)
                if (u.scheme, u.netloc) != (ours.scheme, ours.netloc) or \
                        not (u.path + "/").startswith(ours.path + "/"):
                    return super().urlopen(method, url, redirect=redirect, **kw)
                for renewed in (False, True):
                    headers = dict(kw.get("headers") or self.headers)
                    client._token_url()
                    auth = client._tokens.header()
                    headers.update(auth)
                    r = super().urlopen(method, url, redirect=redirect, **dict(kw, headers=headers))
                    if r.status != 401 or renewed or \
                            "invalid_token" not in (r.headers.get("WWW-Authenticate") or ""):
                        return r
                    r.drain_conn()
                    client._tokens.invalidate(auth["Authorization"])
                return r

        urllib3.PoolManager = TokenPoolManager

        def undo():
            if urllib3.PoolManager is TokenPoolManager:
                urllib3.PoolManager = original
        return undo


def _param_list(parameters):
    if parameters is None or parameters == "":
        return None
    if isinstance(parameters, str):
        return parameters
    return ",".join(parameters)


#: The SWE name of the class (ESA's SWE HAPI Server page calls it so).
SWE_HAPI = HapiClient
