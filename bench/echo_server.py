"""The bare grpc.aio limit: PolicyService.Complete that echoes the prompt, nothing else.

It runs on the event loop ``policyd serve`` would pick (uvloop when installed,
``POLICYD_EVENT_LOOP`` to choose), so that the baseline is the limit of the same stack.

``--upstream URL`` (``bench/cpu_ab.py --floor``) makes each request also POST the prompt to an
OpenAI-compatible upstream over the providers' lean keep-alive client and answer its text: the
floor of a daemon that calls a model per request on this stack, for the CPU account of a miss
(docs/benchmarks.md). The ratios against echo never use it.
"""

from __future__ import annotations

import argparse

import grpc.aio
import orjson

from policyd.cli import event_loop
from policyd.v1 import policyd_pb2 as pb
from policyd.v1 import policyd_pb2_grpc as pb_grpc


class EchoServicer(pb_grpc.PolicyServiceServicer):
    async def Complete(self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext) -> pb.CompleteResponse:
        text = request.messages[0].content if request.messages else ""
        return pb.CompleteResponse(
            request_id=request.request_id,
            status=pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED,
            output=pb.Message(role=pb.ROLE_ASSISTANT, content=text),
        )


class UpstreamEchoServicer(pb_grpc.PolicyServiceServicer):
    """Each request: one POST of the prompt to the upstream, its answer's text echoed back."""

    def __init__(self, upstream: str) -> None:
        from policyd_plugins.http.lean import LeanClient

        self.url = f"{upstream}/v1/chat/completions"
        self.client = LeanClient(upstream, pool_size=100, connect_s=5.0)
        self.headers = {"Content-Type": "application/json"}

    async def Complete(self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext) -> pb.CompleteResponse:
        body = orjson.dumps(
            {"model": "bench-model", "messages": [{"role": "user", "content": request.messages[0].content}]}
        )
        answer = await self.client.post(self.url, body, self.headers, limit=1 << 20, got_bytes=lambda: None)
        text = orjson.loads(answer.body)["choices"][0]["message"]["content"]
        return pb.CompleteResponse(
            request_id=request.request_id,
            status=pb.OUTCOME_STATUS_ACCEPTED_UNVALIDATED,
            output=pb.Message(role=pb.ROLE_ASSISTANT, content=text),
        )


async def serve(listen: str, upstream: str = "") -> None:
    server = grpc.aio.server()
    servicer = UpstreamEchoServicer(upstream) if upstream else EchoServicer()
    pb_grpc.add_PolicyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"echo listening on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--upstream", default="", help="http://HOST:PORT of an OpenAI-compatible upstream to call")
    args = p.parse_args()
    event_loop.run(serve(args.listen, args.upstream), event_loop.loop_factory()[1])


if __name__ == "__main__":
    main()
