"""Who calls the HTTP front door: the same ``auth:`` section, tokens and tenants as gRPC.

The bearer token (``Authorization: Bearer <token>``, which is what an OpenAI SDK sends
as its API key) is checked by the gRPC side's :class:`~policyd.server.auth.Authenticator`;
with ``auth.tls.client_ca_file`` the client certificate's common name can name the
tenant too. Without an ``auth:`` section the caller's ``x-policyd-tenant`` (or
``metadata.policyd_tenant``) is trusted, as the gRPC body's tenant is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from policyd.config import Config
from policyd.errors import PermissionDenied
from policyd.server.auth import AuthGate, Identity
from policyd.server.openai.fast import RawRequest


def _common_names(request: web.BaseRequest | RawRequest) -> list[bytes]:
    transport = request.transport
    cert: Any = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return []
    return [value.encode() for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]


class HttpIdentity:
    """Resolves the caller of one HTTP request to a tenant, following config reloads."""

    def __init__(self, gate: AuthGate, config: Callable[[], Config]) -> None:
        self._gate = gate
        self._config = config

    def identify(self, request: web.BaseRequest | RawRequest) -> Identity | None:
        """The authenticated identity; None when authentication is off. Raises Unauthenticated."""
        auth = self._gate.current()
        if auth is None:
            return None
        metadata = [("authorization", value) for value in request.headers.getall("authorization", [])]
        names = _common_names(request)
        return auth.identify(metadata, {"x509_common_name": names} if names else {})

    def tenant(self, ident: Identity | None, policy: str, asked: str) -> str:
        """The request's tenant: the credential's (checked against its policies), else ``asked`` or the default."""
        config = self._config()
        if ident is None:
            return asked or config.defaults.tenant
        if ident.policies is not None and (policy or config.defaults.policy) not in ident.policies:
            raise PermissionDenied(f"tenant {ident.tenant!r} may not use policy {policy!r}")
        return ident.tenant
