"""The bare grpc.aio limit: PolicyService.Complete that echoes the prompt, nothing else."""

from __future__ import annotations

import argparse
import asyncio

import grpc.aio

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


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    pb_grpc.add_PolicyServiceServicer_to_server(EchoServicer(), server)
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"echo listening on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:0")
    asyncio.run(serve(p.parse_args().listen))


if __name__ == "__main__":
    main()
