"""Authentication: a bearer token (or an mTLS client certificate) names the tenant.

With an ``auth:`` section every PolicyService call must carry ``authorization:
Bearer <token>``; the token's SHA-256 digest is compared in constant time against
every configured digest, so neither a match's position nor a near miss shows in the
timing. The tenant then comes only from the credential: the request body's
``tenant`` and any other header are ignored. Health and reflection stay open (a
probe has no token; reflection reveals only the public contract).

The gate (:mod:`policyd.server.gate`) resolves the identity before the servicer runs
and leaves it in a context variable; :class:`AuthIdentity` is the servicer's ``identity`` injection
point and adds the per-tenant policy check (PERMISSION_DENIED).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from policyd.config.model import Config
from policyd.config.security import AuthConfig
from policyd.errors import PermissionDenied, Unauthenticated
from policyd.v1 import policyd_pb2 as pb


def hash_token(token: str) -> str:
    """The digest stored in ``auth.tenants.<t>.token_sha256``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identity:
    tenant: str
    policies: frozenset[str] | None
    """Policies the tenant may run; None: any."""
    all_stats: bool = False


_current: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("policyd_identity", default=None)


class Authenticator:
    """One configuration's credentials; rebuilt when a reload changes the ``auth:`` section."""

    def __init__(self, auth: AuthConfig) -> None:
        self._digests: list[tuple[bytes, Identity]] = []
        self._common_names: dict[str, Identity] = {}
        for tenant, cfg in auth.tenants.items():
            ident = Identity(tenant, frozenset(cfg.policies) if cfg.policies is not None else None, cfg.all_stats)
            self._digests += [(bytes.fromhex(d), ident) for d in cfg.token_sha256]
            self._common_names.update(dict.fromkeys(cfg.client_cert_cn, ident))

    def identify(self, metadata: Sequence[tuple[str, Any]], auth_context: dict[str, list[bytes]]) -> Identity:
        token = _bearer(metadata)
        if token is not None:
            presented = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
            found: Identity | None = None
            for digest, ident in self._digests:  # no early exit: every digest is compared
                if hmac.compare_digest(digest, presented):
                    found = ident
            if found is None:
                raise Unauthenticated("invalid bearer token", reason="INVALID_CREDENTIALS")
            return found
        for cn in auth_context.get("x509_common_name", []):
            by_cert = self._common_names.get(cn.decode("utf-8", "replace"))
            if by_cert is not None:
                return by_cert
        if auth_context.get("x509_common_name"):
            raise Unauthenticated(
                "the client certificate names no tenant, and no bearer token was sent", reason="MISSING_CREDENTIALS"
            )
        # Worded so that the scrubber (which redacts anything after "authorization:") leaves it readable.
        raise Unauthenticated(
            "missing credentials: send the metadata header authorization with the value 'Bearer <token>'",
            reason="MISSING_CREDENTIALS",
        )


def _bearer(metadata: Sequence[tuple[str, Any]]) -> str | None:
    values = [v for k, v in metadata if k == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise Unauthenticated("more than one authorization header", reason="INVALID_CREDENTIALS")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    scheme, _, token = str(value).strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the authorization header must be 'Bearer <token>'", reason="INVALID_CREDENTIALS")
    return token.strip()


class AuthGate:
    """The daemon's current authenticator, following reloads (None: authentication is off)."""

    def __init__(self, config: Callable[[], Config]) -> None:
        self._config = config
        self._seen: AuthConfig | None = None
        self._auth: Authenticator | None = None

    def current(self) -> Authenticator | None:
        section = self._config().raw.auth
        if section is not self._seen:
            self._seen, self._auth = section, Authenticator(section) if section is not None else None
        return self._auth


def authenticate(gate: AuthGate, context: grpc.aio.ServicerContext) -> None:
    """Resolve the caller's identity before a PolicyService method runs (``policyd.server.gate``);
    raises UNAUTHENTICATED without valid credentials. The identity stays in the call's context."""
    auth = gate.current()
    if auth is None:
        if _current.get() is not None:
            _current.set(None)
        return
    _current.set(auth.identify(context.invocation_metadata() or (), context.auth_context()))


class AuthIdentity:
    """The servicer's ``identity``: the authenticated tenant, else (auth off) the body's tenant."""

    def __init__(self, gate: AuthGate, config: Callable[[], Config]) -> None:
        self._gate = gate
        self._config = config

    def __call__(self, context: grpc.aio.ServicerContext, msg: pb.CompleteRequest) -> str:
        config = self._config()
        ident = _current.get()
        if ident is None:
            if config.raw.auth is not None:  # fail closed if the gate did not run
                raise Unauthenticated("missing credentials", reason="MISSING_CREDENTIALS")
            return msg.tenant or config.defaults.tenant
        policy = msg.policy or config.defaults.policy
        if ident.policies is not None and policy not in ident.policies:
            raise PermissionDenied(
                f"tenant {ident.tenant!r} may not use policy {policy!r}",
                reason="POLICY_NOT_ALLOWED",
                metadata={"tenant": ident.tenant, "policy": policy},
            )
        return ident.tenant

    def report_tenant(self) -> str | None:
        """ReportOutcome's scope: the caller's own outcomes, or any (auth off, or ``all_stats``)."""
        ident = _current.get()
        return None if ident is None or ident.all_stats else ident.tenant

    def operator(self) -> bool:
        """Whether the caller may see operator details (the policy file's reload error): auth off,
        or a credential with ``all_stats``."""
        ident = _current.get()
        return ident is None or ident.all_stats

    def stats_tenant(self, asked: str) -> str:
        """GetStats' tenant filter: a tenant sees only its own figures unless ``all_stats``."""
        ident = _current.get()
        if ident is None or ident.all_stats:
            return asked
        if asked and asked != ident.tenant:
            raise PermissionDenied(
                f"tenant {ident.tenant!r} may not read the stats of tenant {asked!r}",
                reason="STATS_NOT_ALLOWED",
                metadata={"tenant": ident.tenant},
            )
        return ident.tenant
