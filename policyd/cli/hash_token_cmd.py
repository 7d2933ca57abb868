"""``policyd hash-token``: the SHA-256 digest to put in ``auth.tenants.<t>.token_sha256``.

The token is read from standard input, never from the command line (where ``ps``
and shell history would keep it). ``--generate`` makes a new random token and
prints it once, with its digest.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from policyd.errors import InvalidArgument
from policyd.server.auth import hash_token


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hash-token",
        help="print the SHA-256 digest of a bearer token for the auth: section",
        description="Reads a token from stdin (one line) and prints its digest for auth.tenants.<t>.token_sha256.",
    )
    p.add_argument("--generate", action="store_true", help="make a new random token; print it and its digest")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.generate:
        token = secrets.token_urlsafe(32)
        print(f"token:        {token}")
        print(f"token_sha256: {hash_token(token)}")
        return 0
    token = sys.stdin.readline().strip()
    if not token:
        raise InvalidArgument("stdin", "expected the token on standard input (or use --generate)")
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as surrogates
        raise InvalidArgument("stdin", "the token is not UTF-8 text") from None
    print(hash_token(token))
    return 0
