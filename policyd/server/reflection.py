"""Server reflection as ``grpc.reflection.v1`` (what grpcurl and current tools try first) and ``v1alpha``.

grpcio-reflection ships only the v1alpha service. The v1 protocol is the same messages with
the same field numbers under another package, so v1 is served by the same servicer: its
method is registered under the v1 name with the v1alpha (de)serializers (identical bytes on
the wire), and the v1 file descriptor (v1alpha's, renamed) is added to the pool so that
reflection can describe itself under either name.
"""

from __future__ import annotations

import grpc
import grpc.aio
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
_ALPHA = reflection_pb2.DESCRIPTOR.package


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """The v1 reflection file in ``pool``: v1alpha's descriptor under the v1 package."""
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.options.Clear()  # v1alpha's java/go package options name v1alpha

    def renamed(type_name: str) -> str:
        return type_name.replace(f".{_ALPHA}.", f".{V1_PACKAGE}.", 1)

    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type, method.output_type = renamed(method.input_type), renamed(method.output_type)
    pool.Add(proto)


def enable_reflection(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    """Serve reflection for ``service_names`` (plus both reflection services) as v1 and v1alpha."""
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    servicer = reflection.aio.ReflectionServicer((*service_names, reflection.SERVICE_NAME, V1_SERVICE), pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
