"""The lean keep-alive client under the providers' whole-JSON POSTs, against a raw HTTP/1.1 server.

Each test scripts the server's bytes exactly (framings, closes, odd heads) and checks what
the provider's transport makes of them: the parsed answer, or the error a caller sees.
"""

from __future__ import annotations

import asyncio
import gzip
import json

import pytest
from policyd_plugins.http.lean import _Slots
from policyd_plugins.http.settings import HttpSettings
from policyd_plugins.http.transport import HttpTransport
from raw_server import RawServer, headers_of, transport

from policyd.errors import UpstreamError

ANSWER = json.dumps({"ok": True, "text": "é"}).encode()


def ok(body: bytes = ANSWER, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


async def post(t: HttpTransport, server: RawServer) -> object:
    return await t.post_json(f"http://127.0.0.1:{server.port}/v1/chat", {"q": "é"}, {"X-Extra": "1"}, 5.0)


async def test_keep_alive_carries_requests_on_one_connection_with_the_body_and_headers_sent(server):
    server.replies = [ok(), ok()]
    t = transport(server)
    assert await post(t, server) == {"ok": True, "text": "é"}
    assert await post(t, server) == {"ok": True, "text": "é"}
    await t.aclose()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat HTTP/1.1\r\n")
    sent = dict(headers_of(head + b"\r\n\r\n"))
    assert sent["host"] == f"127.0.0.1:{server.port}" and sent["x-extra"] == "1"
    assert sent["content-type"] == "application/json" and json.loads(body) == {"q": "é"}


async def test_chunked_gzip_and_close_delimited_bodies_are_read_whole(server):
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (ANSWER[:5], ANSWER[5:])) + b"0\r\n\r\n"
    packed = gzip.compress(ANSWER)
    server.replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
        ok(packed, "Content-Encoding: gzip\r\n"),
        lambda w: w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + ANSWER),
    ]
    t = transport(server)
    for _ in range(3):
        assert await post(t, server) == {"ok": True, "text": "é"}
    await t.aclose()


async def test_a_continue_head_before_the_answer_is_skipped(server):
    server.replies = [b"HTTP/1.1 100 Continue\r\n\r\n" + ok()]
    t = transport(server)
    assert await post(t, server) == {"ok": True, "text": "é"}
    await t.aclose()


async def test_an_answer_split_across_reads_is_read_whole_and_its_connection_reused(server):
    whole = ok()
    head_end = whole.index(b"\r\n\r\n") + 4
    server.replies = [
        [whole[:20], 0.05, whole[20:head_end], 0.05, whole[head_end : head_end + 5], 0.05, whole[head_end + 5 :]],
        [whole[: head_end + 3], 0.05, whole[head_end + 3 :]],
        ok(),
    ]
    t = transport(server)
    for _ in range(3):
        assert await post(t, server) == {"ok": True, "text": "é"}
    await t.aclose()
    assert server.connections == 1


async def test_a_pooled_connection_the_server_closed_is_not_reused(server):
    server.replies = [ok(extra="Connection: close\r\n"), ok()]
    t = transport(server)
    await post(t, server)
    await post(t, server)
    await t.aclose()
    assert server.connections == 2


async def test_an_error_status_is_classified_with_its_retry_after(server):
    body = b'{"error": {"message": "slow down"}}'
    server.replies = [f"HTTP/1.1 429 Too Many\r\nRetry-After: 2\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body]
    t = transport(server)
    with pytest.raises(UpstreamError, match="slow down") as info:
        await post(t, server)
    await t.aclose()
    assert info.value.status == 429 and info.value.retryable and info.value.retry_after_s == 2.0


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SPDY/9 200 OK\r\n\r\n", "malformed response: invalid HTTP from 127.0.0.1:"),
        (lambda w: w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}"), "was cut short"),
        (lambda w: w.close(), "closed the connection before answering in full"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}", "unsupported Content-Encoding"),
    ],
)
async def test_broken_answers_are_retryable_upstream_errors(server, reply, message):
    server.replies = [reply]
    t = transport(server)
    with pytest.raises(UpstreamError, match=message) as info:
        await post(t, server)
    await t.aclose()
    assert info.value.retryable


async def test_a_header_with_a_line_break_is_refused_before_sending(server):
    t = transport(server)
    for _ in range(2):  # refused headers are never kept: the second call is checked again
        with pytest.raises(UpstreamError, match="request header X-Bad holds a line break") as info:
            await t.post_json(f"http://127.0.0.1:{server.port}/v1/chat", {}, {"X-Bad": "a\r\nInjected: 1"}, 5.0)
        assert not info.value.retryable
    await t.aclose()
    assert server.requests == []


async def test_a_body_over_the_limit_is_refused(server):
    big = json.dumps({"x": "a" * 5000}).encode()
    server.replies = [ok(big)]
    t = transport(server, max_body_bytes=1024)
    with pytest.raises(UpstreamError, match="body larger than 1024 bytes"):
        await post(t, server)
    await t.aclose()


async def test_the_pool_bounds_concurrent_connections(server):
    server.replies = [ok() for _ in range(6)]
    t = transport(server, pool_size=2)
    results = await asyncio.gather(*(post(t, server) for _ in range(6)))
    await t.aclose()
    assert all(r == {"ok": True, "text": "é"} for r in results)
    assert server.connections <= 2


async def test_a_request_cancelled_while_waiting_for_a_pool_slot_leaves_it_to_the_next(server):
    server.replies = [[0.3, ok()], ok()]
    t = transport(server, pool_size=1)
    first = asyncio.ensure_future(post(t, server))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(post(t, server))
    last = asyncio.ensure_future(post(t, server))
    await asyncio.sleep(0.05)
    waiting.cancel()
    assert await first == await last == {"ok": True, "text": "é"}
    assert waiting.cancelled() and server.connections == 1
    await t.aclose()


async def test_a_pool_slot_handed_to_a_waiter_cancelled_before_it_ran_goes_to_the_next():
    slots = _Slots(1)
    await slots.acquire()
    handed = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # the slot goes to the waiter...
    handed.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(slots.acquire(), 1.0)
    assert slots.free == 0


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (made with ``cryptography``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def tls_server(certificate) -> tuple[RawServer, asyncio.Server]:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    s = RawServer()
    srv = await asyncio.start_server(s.handle, "127.0.0.1", 0, ssl=ctx)
    s.port = srv.sockets[0].getsockname()[1]
    return s, srv


async def test_tls_checks_the_certificate_and_speaks_https_once_trusted(certificate, monkeypatch):
    s, srv = await tls_server(certificate)
    url = f"https://127.0.0.1:{s.port}/v1"
    try:
        untrusted = HttpTransport("p", HttpSettings(base_url=url))
        with pytest.raises(UpstreamError, match=f"cannot connect to 127.0.0.1:{s.port}: .*CERTIFICATE_VERIFY_FAILED"):
            await untrusted.post_json(f"{url}/chat", {}, {}, 5.0)
        await untrusted.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the default context's CA file
        s.replies = [ok(), ok()]
        trusted = HttpTransport("p", HttpSettings(base_url=url))
        assert await trusted.post_json(f"{url}/chat", {}, {}, 5.0) == {"ok": True, "text": "é"}
        assert await trusted.post_json(f"{url}/chat", {}, {}, 5.0) == {"ok": True, "text": "é"}
        await trusted.aclose()
        assert s.connections == 1, "two requests over one kept-alive connection"
    finally:
        srv.close()


async def test_repeated_headers_are_sent_the_same_and_bodies_the_stdlib_reads_still_parse(server):
    """The header lines are encoded once per set of headers; what orjson refuses goes to json.loads."""
    odd = [b'{"n": NaN, "big": 123456789012345678901234567890}', '{"t": "é"}'.encode("utf-16")]
    server.replies = [ok(), ok(), ok(odd[0]), ok(odd[1])]
    t = transport(server)
    assert await post(t, server) == {"ok": True, "text": "é"}
    assert await post(t, server) == {"ok": True, "text": "é"}
    nan = await post(t, server)
    assert isinstance(nan, dict) and nan["n"] != nan["n"] and nan["big"] == 123456789012345678901234567890
    assert await post(t, server) == {"t": "é"}
    await t.aclose()
    heads = [r.partition(b"\r\n\r\n")[0] for r in server.requests]
    assert heads[0] == heads[1] == heads[2] == heads[3]  # same body length: the same head, byte for byte
    assert heads[0].endswith(b"Content-Length: 10\r\nAccept-Encoding: gzip, deflate")


async def test_requests_in_flight_time_out_each_at_its_own_deadline_on_the_transports_one_timer(server):
    server.replies = [[0.4, ok()], [2.0, ok()], ok()]
    t = transport(server)
    url = f"http://127.0.0.1:{server.port}/v1/chat"
    slow = asyncio.ensure_future(t.post_json(url, {}, {}, 5.0))  # armed first, for its 5 s
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamError, match=r"no complete answer within 0\.2 s \(total timeout\)"):
        await t.post_json(url, {}, {}, 0.2)  # comes due first: the timer is brought forward
    assert asyncio.get_running_loop().time() - started < 1.0
    assert await slow == {"ok": True, "text": "é"}, "the other request's clock keeps running"
    assert await post(t, server) == {"ok": True, "text": "é"}, "a timer left armed for a finished request"
    assert t._watch is not None and not t._watch.clocks
    await t.aclose()


async def test_a_request_cancelled_from_outside_is_cancelled_not_timed_out(server):
    server.replies = [[5.0, ok()]]
    t = transport(server, timeouts={"first_byte_s": 0.3})
    task = asyncio.ensure_future(post(t, server))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert t._watch is not None and not t._watch.clocks
    await t.aclose()


async def test_a_request_in_flight_when_its_transport_closes_still_times_out():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    t = HttpTransport("p", HttpSettings(base_url=f"http://127.0.0.1:{port}/v1", timeouts={"first_byte_s": 0.2}))  # type: ignore[arg-type]
    call = asyncio.ensure_future(t.post_json(f"http://127.0.0.1:{port}/v1/chat", {}, {}, 5.0))
    await asyncio.sleep(0.05)
    await t.aclose()
    with pytest.raises(UpstreamError, match=r"no response within 0\.2 s"):
        await asyncio.wait_for(call, 3)
    srv.close()
