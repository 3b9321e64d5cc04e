#!/usr/bin/env python3
"""Fetches an OAuth2 access token (client_credentials grant) for a HAPI server such as
ESA's SWE HAPI Server. Python 3 standard library only.

As a command (``python3 get_hapi_access_token.py -h``)::

    ACCESS_TOKEN=$(python3 get_hapi_access_token.py -s -i "$CLIENT_ID")

As a module::

    from get_hapi_access_token import (get_oauth2_access_token, is_token_valid,
                                       extract_access_token)
    access_token, access_token_timestamp = get_oauth2_access_token(client_id, client_secret)
    if access_token and is_token_valid(access_token, access_token_timestamp):
        auth_header = {"Authorization": f"Bearer {extract_access_token(access_token)}"}

A server that offers this file at /downloads fills in its own token endpoint and scope
on the two DEFAULT_ lines below.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TOKEN_URL = "http://127.0.0.1:8080/oauth/token"
DEFAULT_SCOPE = "swe_hapiserver"

#: A token counts as expired this long before its ``expires_in`` runs out (at most a
#: tenth of its lifetime), so that a request sent with it still arrives in time.
SAFETY_MARGIN = 30.0

__all__ = ["TokenError", "get_oauth2_access_token", "is_token_valid", "extract_access_token"]


class TokenError(RuntimeError):
    """No token was obtained: the OAuth2 error of the token endpoint, or the cause."""

    def __init__(self, message, error=None, status=None):
        super().__init__(message)
        #: The OAuth2 ``error`` code (``invalid_client``, ...), if the endpoint sent one.
        self.error = error
        #: The HTTP status, if there was an answer.
        self.status = status


def get_oauth2_access_token(client_id, client_secret, token_url=None, scope=None, timeout=60):
    """Requests a token; returns ``(token response as a dict, time.time() of the request)``.

    ``token_url`` defaults to ``$HAPI_TOKEN_URL``, else ``DEFAULT_TOKEN_URL``; ``scope`` to
    ``DEFAULT_SCOPE``. Raises :class:`TokenError` when no token is obtained.
    """
    token_url = token_url or os.environ.get("HAPI_TOKEN_URL") or DEFAULT_TOKEN_URL
    if not token_url:
        raise TokenError("no token endpoint: give -t TOKEN_URL (token_url=) or set HAPI_TOKEN_URL")
    form = urllib.parse.urlencode({
        "client_id": client_id,
        "client_secret": client_secret,
        "grant_type": "client_credentials",
        "scope": scope or DEFAULT_SCOPE,
    }).encode()
    req = urllib.request.Request(token_url, data=form, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
    })
    # Taken before the request: the token's lifetime starts no earlier than this.
    timestamp = time.time()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise TokenError(f"cannot get a token from {token_url}: {reason}") from None
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if status != 200:
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            desc = doc.get("error_description")
            raise TokenError(
                f"the token endpoint refused (HTTP {status}): {doc['error']}"
                + (f": {desc}" if isinstance(desc, str) and desc else ""),
                error=doc["error"], status=status)
        raise TokenError(f"the token endpoint answered HTTP {status} without an OAuth2 error "
                         f"(is {token_url} a token endpoint?)", status=status)
    if not isinstance(doc, dict):
        raise TokenError(f"the token endpoint's answer is not JSON (is {token_url} a token endpoint?)",
                         status=status)
    if not isinstance(doc.get("access_token"), str) or not doc["access_token"]:
        raise TokenError("the token response holds no access_token", status=status)
    return doc, timestamp


def is_token_valid(token, timestamp, margin=None):
    """Whether ``token`` (a token response) obtained at ``timestamp`` (``time.time()``)
    may still be used: false from a safety margin (``SAFETY_MARGIN`` seconds, at most a
    tenth of the lifetime) before ``expires_in`` runs out. A response without
    ``expires_in`` is taken as valid: the server will say when it is not."""
    if not isinstance(token, dict) or not token.get("access_token"):
        return False
    expires_in = token.get("expires_in")
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return True
    if margin is None:
        margin = min(SAFETY_MARGIN, expires_in / 10)
    return time.time() < timestamp + expires_in - margin


def extract_access_token(token):
    """The access token string of a token response."""
    if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
        raise TokenError("not a token response: no access_token")
    return token["access_token"]


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "get_hapi_access_token.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fetches an access token from the token endpoint (OAuth2 client_credentials "
                    "grant) and prints the token response (JSON), or with -s only the access token.",
        epilog="The secret is safer in the environment than after -x: a command line can be read\n"
               "by every user of the machine (ps, /proc/PID/cmdline) while the command runs, and\n"
               "it is kept in your shell history. For example:\n\n"
               "  read -rs HAPI_CLIENT_SECRET && export HAPI_CLIENT_SECRET\n"
               "  ACCESS_TOKEN=$(python3 get_hapi_access_token.py -s -i \"$CLIENT_ID\")\n\n"
               "The secret is never printed. A token is valid for expires_in seconds (SWE: 300);\n"
               "the client_credentials grant has no refresh token, so fetch a new one then.\n\n"
               "Exit status: 0 on success, 1 when no token was obtained (the OAuth2 error or the\n"
               "cause is printed on stderr), 2 on a usage error.")
    p.add_argument("-s", action="store_true", help="silent: print only the access token")
    p.add_argument("-i", metavar="CLIENT_ID", help="machine-to-machine client id (default: $HAPI_CLIENT_ID)")
    p.add_argument("-x", metavar="CLIENT_SECRET", help="its client secret (default: $HAPI_CLIENT_SECRET)")
    p.add_argument("-t", metavar="TOKEN_URL",
                   help=f"the token endpoint (default: $HAPI_TOKEN_URL, else {DEFAULT_TOKEN_URL})")
    p.add_argument("-c", metavar="SCOPE", default=DEFAULT_SCOPE,
                   help=f"the scope to ask for (default: {DEFAULT_SCOPE})")
    a = p.parse_args(argv)
    client_id = a.i or os.environ.get("HAPI_CLIENT_ID")
    secret = a.x or os.environ.get("HAPI_CLIENT_SECRET")
    if not client_id:
        p.error("no client id: give -i CLIENT_ID or set HAPI_CLIENT_ID")
    if not secret:
        p.error("no client secret: set HAPI_CLIENT_SECRET or give -x")
    try:
        token, _ = get_oauth2_access_token(client_id, secret, token_url=a.t, scope=a.c)
    except TokenError as e:
        print(f"{p.prog}: {e}", file=sys.stderr)
        return 1
    print(token["access_token"] if a.s else json.dumps(token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
