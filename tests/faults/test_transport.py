"""mTLS (a client certificate names the tenant) and Unix-socket listening, through real servers."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
from pathlib import Path

import grpc
import grpc.aio
import pytest
from faultkit import gauge_config, spawn, status_of, user

from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _cert(cn: str, key, issuer_key, issuer_name, *, ca: bool = False, san_ip: str | None = None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san_ip:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san_ip))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("policyd-test-ca", ca_key, None, None, ca=True)
    files: dict[str, bytes] = {"ca.pem": ca.public_bytes(serialization.Encoding.PEM)}
    subjects = (("server", "localhost", "127.0.0.1"), ("team-a", "team-a", None), ("stranger", "stranger", None))
    for name, cn, ip in subjects:
        key = ec.generate_private_key(ec.SECP256R1())
        files[f"{name}.key"] = _pem_key(key)
        files[f"{name}.pem"] = _cert(cn, key, ca_key, ca.subject, san_ip=ip).public_bytes(serialization.Encoding.PEM)
    out = {}
    for fname, data in files.items():
        (d / fname).write_bytes(data)
        out[fname] = d / fname
    return out


def _tls_config(pki: dict[str, Path]) -> str:
    return (
        gauge_config()
        + f"""
auth:
  tls: {{cert_file: "{pki["server.pem"]}", key_file: "{pki["server.key"]}", client_ca_file: "{pki["ca.pem"]}"}}
  tenants:
    team-a: {{client_cert_cn: [team-a]}}
"""
    )


def _channel(port: int, pki: dict[str, Path], client: str | None) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki["ca.pem"].read_bytes(),
        private_key=pki[f"{client}.key"].read_bytes() if client else None,
        certificate_chain=pki[f"{client}.pem"].read_bytes() if client else None,
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", creds)


async def test_mtls_client_certificate_names_the_tenant_and_no_certificate_is_refused(live, gauge_host, gauge, pki):
    _, running, _ = await live(_tls_config(pki), host=gauge_host)
    async with _channel(running.port, pki, "team-a") as channel:
        resp = await policyd_pb2_grpc.PolicyServiceStub(channel).Complete(user("hi", tenant="spoofed"), timeout=5)
    assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
    assert [c.tenant for c in gauge.calls] == ["team-a"]
    async with _channel(running.port, pki, "stranger") as channel:
        code = await status_of(policyd_pb2_grpc.PolicyServiceStub(channel).Complete(user("hi"), timeout=5))
    assert code == grpc.StatusCode.UNAUTHENTICATED, "a valid certificate whose name is no tenant"
    async with _channel(running.port, pki, None) as channel:
        code = await status_of(policyd_pb2_grpc.PolicyServiceStub(channel).Complete(user("hi"), timeout=3))
    assert code == grpc.StatusCode.UNAVAILABLE, "the handshake fails without a client certificate"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        code = await status_of(policyd_pb2_grpc.PolicyServiceStub(channel).Complete(user("hi"), timeout=3))
    assert code == grpc.StatusCode.UNAVAILABLE, "plaintext is refused"
    assert len(gauge.calls) == 1


async def test_unix_socket_listening_serves_and_the_socket_is_owner_and_group_only(tmp_path, single_model_config):
    config = tmp_path / "policy.yaml"
    config.write_text(single_model_config)
    sock = tmp_path / "policyd.sock"
    async with spawn(config, tmp_path / "data", listen=f"unix://{sock}") as proc:
        assert proc.address == f"unix://{sock}"
        assert stat.S_ISSOCK(os.stat(sock).st_mode) and stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        async with grpc.aio.insecure_channel(f"unix://{sock}") as channel:
            resp = await policyd_pb2_grpc.PolicyServiceStub(channel).Complete(user("over a socket"), timeout=10)
        assert resp.status == pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED
        proc.proc.terminate()
        assert await proc.wait_exit(15) == 0
