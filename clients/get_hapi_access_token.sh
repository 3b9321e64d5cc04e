#!/usr/bin/env bash
# get_hapi_access_token.sh: fetches an OAuth2 access token (client_credentials grant)
# for a HAPI server such as ESA's SWE HAPI Server, with bash and curl only.
#
#   ACCESS_TOKEN=$(./get_hapi_access_token.sh -s -i "$CLIENT_ID" -x "$CLIENT_SECRET")
#   curl -H "Authorization: Bearer $ACCESS_TOKEN" "https://hapi.example.org/hapi/catalog"
#
# A server that offers this script at /downloads fills in its own token endpoint and
# scope on the two DEFAULT_ lines below.
set -u -o pipefail

DEFAULT_TOKEN_URL='http://127.0.0.1:8080/oauth/token'
DEFAULT_SCOPE='swe_hapiserver'

me=$(basename "$0")

usage() {
  cat <<EOF
Usage: $me [-s] [-i CLIENT_ID] [-x CLIENT_SECRET] [-t TOKEN_URL] [-c SCOPE]

Fetches an access token from the token endpoint (OAuth2 client_credentials grant)
and prints the token response (JSON), or with -s only the access token.

  -h             print this help and exit
  -s             silent: print only the access token
  -i CLIENT_ID   machine-to-machine client id      (default: \$HAPI_CLIENT_ID)
  -x SECRET      its client secret                 (default: \$HAPI_CLIENT_SECRET)
  -t TOKEN_URL   the token endpoint                (default: \$HAPI_TOKEN_URL, else
                 $DEFAULT_TOKEN_URL)
  -c SCOPE       the scope to ask for              (default: $DEFAULT_SCOPE)

The secret is safer in the environment than after -x: a command line can be read by
every user of the machine (ps, /proc/PID/cmdline) while the command runs, and it is
kept in your shell history. For example:

  read -rs HAPI_CLIENT_SECRET && export HAPI_CLIENT_SECRET
  ACCESS_TOKEN=\$($me -s -i "\$CLIENT_ID")

This script hands the secret to curl on its standard input, never on curl's command
line, and never prints it. A token is valid for expires_in seconds (SWE: 300); the
client_credentials grant has no refresh token, so fetch a new one when it expires.

Exit status: 0 on success, 1 when no token was obtained (the OAuth2 error or the
cause is printed on stderr), 2 on a usage error.
EOF
}

fail() {
  echo "$me: $*" >&2
  exit 1
}

silent=0
client_id=${HAPI_CLIENT_ID:-}
client_secret=${HAPI_CLIENT_SECRET:-}
token_url=${HAPI_TOKEN_URL:-$DEFAULT_TOKEN_URL}
scope=$DEFAULT_SCOPE

while getopts ":hsi:x:t:c:" opt; do
  case $opt in
    h) usage; exit 0 ;;
    s) silent=1 ;;
    i) client_id=$OPTARG ;;
    x) client_secret=$OPTARG ;;
    t) token_url=$OPTARG ;;
    c) scope=$OPTARG ;;
    :) echo "$me: option -$OPTARG needs a value (see -h)" >&2; exit 2 ;;
    *) echo "$me: unknown option -$OPTARG (see -h)" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
  echo "$me: unexpected argument '$1' (see -h)" >&2
  exit 2
fi
[ -n "$client_id" ] || { echo "$me: no client id: give -i CLIENT_ID or set HAPI_CLIENT_ID" >&2; exit 2; }
[ -n "$client_secret" ] || { echo "$me: no client secret: set HAPI_CLIENT_SECRET or give -x" >&2; exit 2; }
[ -n "$token_url" ] || { echo "$me: no token endpoint: give -t TOKEN_URL or set HAPI_TOKEN_URL" >&2; exit 2; }
command -v curl >/dev/null || fail "curl is not installed"

# The last line of curl's output is the HTTP status (-w); the body is everything before.
# The secret goes in on stdin (client_secret@-), so it never shows in curl's argv.
errors=$(mktemp) || fail "cannot create a temporary file"
trap 'rm -f "$errors"' EXIT
out=$(printf '%s' "$client_secret" | curl --silent --show-error --max-time 60 \
  --header 'Accept: application/json' \
  --data-urlencode "client_id=$client_id" \
  --data-urlencode 'client_secret@-' \
  --data-urlencode 'grant_type=client_credentials' \
  --data-urlencode "scope=$scope" \
  --write-out '\n%{http_code}' \
  "$token_url" 2>"$errors")
rc=$?
if [ $rc -ne 0 ]; then
  fail "cannot get a token from $token_url: $(sed -n 's/^curl: //p' "$errors" | head -n 1)"
fi
status=${out##*$'\n'}
body=${out%$'\n'*}

# One JSON string member of the body (no jq needed: token responses are flat objects
# and none of these values holds a quote or a backslash).
member() {
  local re="\"$1\"[[:space:]]*:[[:space:]]*\"([^\"\\\\]*)\""
  [[ $body =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
}

if [ "$status" != 200 ]; then
  err=$(member error)
  if [ -n "$err" ]; then
    desc=$(member error_description)
    fail "the token endpoint refused (HTTP $status): $err${desc:+: $desc}"
  fi
  fail "the token endpoint answered HTTP $status without an OAuth2 error (is $token_url a token endpoint?)"
fi
case $body in
  '{'*) ;;
  *) fail "the token endpoint's answer is not JSON (is $token_url a token endpoint?)" ;;
esac
token=$(member access_token)
[ -n "$token" ] || fail "the token response holds no access_token"

if [ $silent -eq 1 ]; then
  printf '%s\n' "$token"
else
  printf '%s\n' "$body"
fi
