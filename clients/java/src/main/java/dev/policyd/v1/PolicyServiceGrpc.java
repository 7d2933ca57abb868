package dev.policyd.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * PolicyService routes completion requests by policy.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class PolicyServiceGrpc {

  private PolicyServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "policyd.v1.PolicyService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.CompleteResponse> getCompleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Complete",
      requestType = dev.policyd.v1.CompleteRequest.class,
      responseType = dev.policyd.v1.CompleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.CompleteResponse> getCompleteMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest, dev.policyd.v1.CompleteResponse> getCompleteMethod;
    if ((getCompleteMethod = PolicyServiceGrpc.getCompleteMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getCompleteMethod = PolicyServiceGrpc.getCompleteMethod) == null) {
          PolicyServiceGrpc.getCompleteMethod = getCompleteMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.CompleteRequest, dev.policyd.v1.CompleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Complete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.CompleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.CompleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("Complete"))
              .build();
        }
      }
    }
    return getCompleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.StreamCompleteResponse> getStreamCompleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamComplete",
      requestType = dev.policyd.v1.CompleteRequest.class,
      responseType = dev.policyd.v1.StreamCompleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.StreamCompleteResponse> getStreamCompleteMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest, dev.policyd.v1.StreamCompleteResponse> getStreamCompleteMethod;
    if ((getStreamCompleteMethod = PolicyServiceGrpc.getStreamCompleteMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getStreamCompleteMethod = PolicyServiceGrpc.getStreamCompleteMethod) == null) {
          PolicyServiceGrpc.getStreamCompleteMethod = getStreamCompleteMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.CompleteRequest, dev.policyd.v1.StreamCompleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamComplete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.CompleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.StreamCompleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("StreamComplete"))
              .build();
        }
      }
    }
    return getStreamCompleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.ExplainResponse> getExplainMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Explain",
      requestType = dev.policyd.v1.CompleteRequest.class,
      responseType = dev.policyd.v1.ExplainResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest,
      dev.policyd.v1.ExplainResponse> getExplainMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.CompleteRequest, dev.policyd.v1.ExplainResponse> getExplainMethod;
    if ((getExplainMethod = PolicyServiceGrpc.getExplainMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getExplainMethod = PolicyServiceGrpc.getExplainMethod) == null) {
          PolicyServiceGrpc.getExplainMethod = getExplainMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.CompleteRequest, dev.policyd.v1.ExplainResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Explain"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.CompleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.ExplainResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("Explain"))
              .build();
        }
      }
    }
    return getExplainMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.ReportOutcomeRequest,
      dev.policyd.v1.ReportOutcomeResponse> getReportOutcomeMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ReportOutcome",
      requestType = dev.policyd.v1.ReportOutcomeRequest.class,
      responseType = dev.policyd.v1.ReportOutcomeResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.ReportOutcomeRequest,
      dev.policyd.v1.ReportOutcomeResponse> getReportOutcomeMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.ReportOutcomeRequest, dev.policyd.v1.ReportOutcomeResponse> getReportOutcomeMethod;
    if ((getReportOutcomeMethod = PolicyServiceGrpc.getReportOutcomeMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getReportOutcomeMethod = PolicyServiceGrpc.getReportOutcomeMethod) == null) {
          PolicyServiceGrpc.getReportOutcomeMethod = getReportOutcomeMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.ReportOutcomeRequest, dev.policyd.v1.ReportOutcomeResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ReportOutcome"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.ReportOutcomeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.ReportOutcomeResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("ReportOutcome"))
              .build();
        }
      }
    }
    return getReportOutcomeMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.GetStatsRequest,
      dev.policyd.v1.GetStatsResponse> getGetStatsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetStats",
      requestType = dev.policyd.v1.GetStatsRequest.class,
      responseType = dev.policyd.v1.GetStatsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.GetStatsRequest,
      dev.policyd.v1.GetStatsResponse> getGetStatsMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.GetStatsRequest, dev.policyd.v1.GetStatsResponse> getGetStatsMethod;
    if ((getGetStatsMethod = PolicyServiceGrpc.getGetStatsMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getGetStatsMethod = PolicyServiceGrpc.getGetStatsMethod) == null) {
          PolicyServiceGrpc.getGetStatsMethod = getGetStatsMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.GetStatsRequest, dev.policyd.v1.GetStatsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetStats"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.GetStatsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.GetStatsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("GetStats"))
              .build();
        }
      }
    }
    return getGetStatsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.ListModelsRequest,
      dev.policyd.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = dev.policyd.v1.ListModelsRequest.class,
      responseType = dev.policyd.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.ListModelsRequest,
      dev.policyd.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.ListModelsRequest, dev.policyd.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = PolicyServiceGrpc.getListModelsMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getListModelsMethod = PolicyServiceGrpc.getListModelsMethod) == null) {
          PolicyServiceGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.ListModelsRequest, dev.policyd.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.policyd.v1.EmbedRequest,
      dev.policyd.v1.EmbedResponse> getEmbedMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Embed",
      requestType = dev.policyd.v1.EmbedRequest.class,
      responseType = dev.policyd.v1.EmbedResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.policyd.v1.EmbedRequest,
      dev.policyd.v1.EmbedResponse> getEmbedMethod() {
    io.grpc.MethodDescriptor<dev.policyd.v1.EmbedRequest, dev.policyd.v1.EmbedResponse> getEmbedMethod;
    if ((getEmbedMethod = PolicyServiceGrpc.getEmbedMethod) == null) {
      synchronized (PolicyServiceGrpc.class) {
        if ((getEmbedMethod = PolicyServiceGrpc.getEmbedMethod) == null) {
          PolicyServiceGrpc.getEmbedMethod = getEmbedMethod =
              io.grpc.MethodDescriptor.<dev.policyd.v1.EmbedRequest, dev.policyd.v1.EmbedResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Embed"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.EmbedRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.policyd.v1.EmbedResponse.getDefaultInstance()))
              .setSchemaDescriptor(new PolicyServiceMethodDescriptorSupplier("Embed"))
              .build();
        }
      }
    }
    return getEmbedMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static PolicyServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PolicyServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PolicyServiceStub>() {
        @java.lang.Override
        public PolicyServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PolicyServiceStub(channel, callOptions);
        }
      };
    return PolicyServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static PolicyServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PolicyServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PolicyServiceBlockingV2Stub>() {
        @java.lang.Override
        public PolicyServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PolicyServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return PolicyServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static PolicyServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PolicyServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PolicyServiceBlockingStub>() {
        @java.lang.Override
        public PolicyServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PolicyServiceBlockingStub(channel, callOptions);
        }
      };
    return PolicyServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static PolicyServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<PolicyServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<PolicyServiceFutureStub>() {
        @java.lang.Override
        public PolicyServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new PolicyServiceFutureStub(channel, callOptions);
        }
      };
    return PolicyServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Complete runs the matching policy's strategy and answers once it is done.
     * The outcome status says whether the answer was accepted; an RPC error is
     * returned only for bad input (INVALID_ARGUMENT naming the field), an
     * unknown policy (NOT_FOUND), an expired deadline (DEADLINE_EXCEEDED), an
     * exhausted budget (RESOURCE_EXHAUSTED) or an internal fault (INTERNAL).
     * </pre>
     */
    default void complete(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.CompleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCompleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * StreamComplete is Complete with the answer's text relayed as it arrives.
     * The stream ends with exactly one `final` event holding the full response.
     * A failure after the first text delta ends the stream with an error
     * status, never with a clean end and a truncated answer.
     * </pre>
     */
    default void streamComplete(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.StreamCompleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStreamCompleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * Explain shows the decision the policy would make for this request (the
     * plan, each step and the estimated cost range) without calling any model.
     * </pre>
     */
    default void explain(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ExplainResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getExplainMethod(), responseObserver);
    }

    /**
     * <pre>
     * ReportOutcome lets the caller say later whether an answer really served
     * its purpose. It overrides the validator's view in the cost per
     * successful outcome. Idempotent; an unknown request id is NOT_FOUND.
     * </pre>
     */
    default void reportOutcome(dev.policyd.v1.ReportOutcomeRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ReportOutcomeResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReportOutcomeMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetStats answers cost per successful outcome and related figures,
     * grouped as asked, over a time window.
     * </pre>
     */
    default void getStats(dev.policyd.v1.GetStatsRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.GetStatsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetStatsMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListModels lists the model catalog the daemon routes over.
     * </pre>
     */
    default void listModels(dev.policyd.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Embed turns texts into vectors with the embedding model the matching
     * policy rule names (a rule whose plan has `strategy: embed`). Every vector
     * of one answer comes from the same model: when the plan's model fails, its
     * fallback re-embeds the whole batch. Texts are cached one by one per
     * (tenant, model, dimensions, text). Errors are those of Complete; a policy
     * with no embedding rule is FAILED_PRECONDITION.
     * </pre>
     */
    default void embed(dev.policyd.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getEmbedMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service PolicyService.
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public static abstract class PolicyServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return PolicyServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service PolicyService.
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public static final class PolicyServiceStub
      extends io.grpc.stub.AbstractAsyncStub<PolicyServiceStub> {
    private PolicyServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PolicyServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PolicyServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Complete runs the matching policy's strategy and answers once it is done.
     * The outcome status says whether the answer was accepted; an RPC error is
     * returned only for bad input (INVALID_ARGUMENT naming the field), an
     * unknown policy (NOT_FOUND), an expired deadline (DEADLINE_EXCEEDED), an
     * exhausted budget (RESOURCE_EXHAUSTED) or an internal fault (INTERNAL).
     * </pre>
     */
    public void complete(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.CompleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCompleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * StreamComplete is Complete with the answer's text relayed as it arrives.
     * The stream ends with exactly one `final` event holding the full response.
     * A failure after the first text delta ends the stream with an error
     * status, never with a clean end and a truncated answer.
     * </pre>
     */
    public void streamComplete(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.StreamCompleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getStreamCompleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Explain shows the decision the policy would make for this request (the
     * plan, each step and the estimated cost range) without calling any model.
     * </pre>
     */
    public void explain(dev.policyd.v1.CompleteRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ExplainResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getExplainMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ReportOutcome lets the caller say later whether an answer really served
     * its purpose. It overrides the validator's view in the cost per
     * successful outcome. Idempotent; an unknown request id is NOT_FOUND.
     * </pre>
     */
    public void reportOutcome(dev.policyd.v1.ReportOutcomeRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ReportOutcomeResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReportOutcomeMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetStats answers cost per successful outcome and related figures,
     * grouped as asked, over a time window.
     * </pre>
     */
    public void getStats(dev.policyd.v1.GetStatsRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.GetStatsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetStatsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListModels lists the model catalog the daemon routes over.
     * </pre>
     */
    public void listModels(dev.policyd.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Embed turns texts into vectors with the embedding model the matching
     * policy rule names (a rule whose plan has `strategy: embed`). Every vector
     * of one answer comes from the same model: when the plan's model fails, its
     * fallback re-embeds the whole batch. Texts are cached one by one per
     * (tenant, model, dimensions, text). Errors are those of Complete; a policy
     * with no embedding rule is FAILED_PRECONDITION.
     * </pre>
     */
    public void embed(dev.policyd.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<dev.policyd.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service PolicyService.
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public static final class PolicyServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<PolicyServiceBlockingV2Stub> {
    private PolicyServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PolicyServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PolicyServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Complete runs the matching policy's strategy and answers once it is done.
     * The outcome status says whether the answer was accepted; an RPC error is
     * returned only for bad input (INVALID_ARGUMENT naming the field), an
     * unknown policy (NOT_FOUND), an expired deadline (DEADLINE_EXCEEDED), an
     * exhausted budget (RESOURCE_EXHAUSTED) or an internal fault (INTERNAL).
     * </pre>
     */
    public dev.policyd.v1.CompleteResponse complete(dev.policyd.v1.CompleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getCompleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * StreamComplete is Complete with the answer's text relayed as it arrives.
     * The stream ends with exactly one `final` event holding the full response.
     * A failure after the first text delta ends the stream with an error
     * status, never with a clean end and a truncated answer.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, dev.policyd.v1.StreamCompleteResponse>
        streamComplete(dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getStreamCompleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Explain shows the decision the policy would make for this request (the
     * plan, each step and the estimated cost range) without calling any model.
     * </pre>
     */
    public dev.policyd.v1.ExplainResponse explain(dev.policyd.v1.CompleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getExplainMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ReportOutcome lets the caller say later whether an answer really served
     * its purpose. It overrides the validator's view in the cost per
     * successful outcome. Idempotent; an unknown request id is NOT_FOUND.
     * </pre>
     */
    public dev.policyd.v1.ReportOutcomeResponse reportOutcome(dev.policyd.v1.ReportOutcomeRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getReportOutcomeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetStats answers cost per successful outcome and related figures,
     * grouped as asked, over a time window.
     * </pre>
     */
    public dev.policyd.v1.GetStatsResponse getStats(dev.policyd.v1.GetStatsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetStatsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListModels lists the model catalog the daemon routes over.
     * </pre>
     */
    public dev.policyd.v1.ListModelsResponse listModels(dev.policyd.v1.ListModelsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Embed turns texts into vectors with the embedding model the matching
     * policy rule names (a rule whose plan has `strategy: embed`). Every vector
     * of one answer comes from the same model: when the plan's model fails, its
     * fallback re-embeds the whole batch. Texts are cached one by one per
     * (tenant, model, dimensions, text). Errors are those of Complete; a policy
     * with no embedding rule is FAILED_PRECONDITION.
     * </pre>
     */
    public dev.policyd.v1.EmbedResponse embed(dev.policyd.v1.EmbedRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getEmbedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service PolicyService.
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public static final class PolicyServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<PolicyServiceBlockingStub> {
    private PolicyServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PolicyServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PolicyServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Complete runs the matching policy's strategy and answers once it is done.
     * The outcome status says whether the answer was accepted; an RPC error is
     * returned only for bad input (INVALID_ARGUMENT naming the field), an
     * unknown policy (NOT_FOUND), an expired deadline (DEADLINE_EXCEEDED), an
     * exhausted budget (RESOURCE_EXHAUSTED) or an internal fault (INTERNAL).
     * </pre>
     */
    public dev.policyd.v1.CompleteResponse complete(dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCompleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * StreamComplete is Complete with the answer's text relayed as it arrives.
     * The stream ends with exactly one `final` event holding the full response.
     * A failure after the first text delta ends the stream with an error
     * status, never with a clean end and a truncated answer.
     * </pre>
     */
    public java.util.Iterator<dev.policyd.v1.StreamCompleteResponse> streamComplete(
        dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getStreamCompleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Explain shows the decision the policy would make for this request (the
     * plan, each step and the estimated cost range) without calling any model.
     * </pre>
     */
    public dev.policyd.v1.ExplainResponse explain(dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getExplainMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ReportOutcome lets the caller say later whether an answer really served
     * its purpose. It overrides the validator's view in the cost per
     * successful outcome. Idempotent; an unknown request id is NOT_FOUND.
     * </pre>
     */
    public dev.policyd.v1.ReportOutcomeResponse reportOutcome(dev.policyd.v1.ReportOutcomeRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReportOutcomeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetStats answers cost per successful outcome and related figures,
     * grouped as asked, over a time window.
     * </pre>
     */
    public dev.policyd.v1.GetStatsResponse getStats(dev.policyd.v1.GetStatsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetStatsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListModels lists the model catalog the daemon routes over.
     * </pre>
     */
    public dev.policyd.v1.ListModelsResponse listModels(dev.policyd.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Embed turns texts into vectors with the embedding model the matching
     * policy rule names (a rule whose plan has `strategy: embed`). Every vector
     * of one answer comes from the same model: when the plan's model fails, its
     * fallback re-embeds the whole batch. Texts are cached one by one per
     * (tenant, model, dimensions, text). Errors are those of Complete; a policy
     * with no embedding rule is FAILED_PRECONDITION.
     * </pre>
     */
    public dev.policyd.v1.EmbedResponse embed(dev.policyd.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getEmbedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service PolicyService.
   * <pre>
   * PolicyService routes completion requests by policy.
   * </pre>
   */
  public static final class PolicyServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<PolicyServiceFutureStub> {
    private PolicyServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected PolicyServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new PolicyServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Complete runs the matching policy's strategy and answers once it is done.
     * The outcome status says whether the answer was accepted; an RPC error is
     * returned only for bad input (INVALID_ARGUMENT naming the field), an
     * unknown policy (NOT_FOUND), an expired deadline (DEADLINE_EXCEEDED), an
     * exhausted budget (RESOURCE_EXHAUSTED) or an internal fault (INTERNAL).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.CompleteResponse> complete(
        dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCompleteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Explain shows the decision the policy would make for this request (the
     * plan, each step and the estimated cost range) without calling any model.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.ExplainResponse> explain(
        dev.policyd.v1.CompleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getExplainMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ReportOutcome lets the caller say later whether an answer really served
     * its purpose. It overrides the validator's view in the cost per
     * successful outcome. Idempotent; an unknown request id is NOT_FOUND.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.ReportOutcomeResponse> reportOutcome(
        dev.policyd.v1.ReportOutcomeRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReportOutcomeMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetStats answers cost per successful outcome and related figures,
     * grouped as asked, over a time window.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.GetStatsResponse> getStats(
        dev.policyd.v1.GetStatsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetStatsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListModels lists the model catalog the daemon routes over.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.ListModelsResponse> listModels(
        dev.policyd.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Embed turns texts into vectors with the embedding model the matching
     * policy rule names (a rule whose plan has `strategy: embed`). Every vector
     * of one answer comes from the same model: when the plan's model fails, its
     * fallback re-embeds the whole batch. Texts are cached one by one per
     * (tenant, model, dimensions, text). Errors are those of Complete; a policy
     * with no embedding rule is FAILED_PRECONDITION.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.policyd.v1.EmbedResponse> embed(
        dev.policyd.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_COMPLETE = 0;
  private static final int METHODID_STREAM_COMPLETE = 1;
  private static final int METHODID_EXPLAIN = 2;
  private static final int METHODID_REPORT_OUTCOME = 3;
  private static final int METHODID_GET_STATS = 4;
  private static final int METHODID_LIST_MODELS = 5;
  private static final int METHODID_EMBED = 6;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_COMPLETE:
          serviceImpl.complete((dev.policyd.v1.CompleteRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.CompleteResponse>) responseObserver);
          break;
        case METHODID_STREAM_COMPLETE:
          serviceImpl.streamComplete((dev.policyd.v1.CompleteRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.StreamCompleteResponse>) responseObserver);
          break;
        case METHODID_EXPLAIN:
          serviceImpl.explain((dev.policyd.v1.CompleteRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.ExplainResponse>) responseObserver);
          break;
        case METHODID_REPORT_OUTCOME:
          serviceImpl.reportOutcome((dev.policyd.v1.ReportOutcomeRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.ReportOutcomeResponse>) responseObserver);
          break;
        case METHODID_GET_STATS:
          serviceImpl.getStats((dev.policyd.v1.GetStatsRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.GetStatsResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((dev.policyd.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.ListModelsResponse>) responseObserver);
          break;
        case METHODID_EMBED:
          serviceImpl.embed((dev.policyd.v1.EmbedRequest) request,
              (io.grpc.stub.StreamObserver<dev.policyd.v1.EmbedResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getCompleteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.CompleteRequest,
              dev.policyd.v1.CompleteResponse>(
                service, METHODID_COMPLETE)))
        .addMethod(
          getStreamCompleteMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              dev.policyd.v1.CompleteRequest,
              dev.policyd.v1.StreamCompleteResponse>(
                service, METHODID_STREAM_COMPLETE)))
        .addMethod(
          getExplainMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.CompleteRequest,
              dev.policyd.v1.ExplainResponse>(
                service, METHODID_EXPLAIN)))
        .addMethod(
          getReportOutcomeMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.ReportOutcomeRequest,
              dev.policyd.v1.ReportOutcomeResponse>(
                service, METHODID_REPORT_OUTCOME)))
        .addMethod(
          getGetStatsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.GetStatsRequest,
              dev.policyd.v1.GetStatsResponse>(
                service, METHODID_GET_STATS)))
        .addMethod(
          getListModelsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.ListModelsRequest,
              dev.policyd.v1.ListModelsResponse>(
                service, METHODID_LIST_MODELS)))
        .addMethod(
          getEmbedMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              dev.policyd.v1.EmbedRequest,
              dev.policyd.v1.EmbedResponse>(
                service, METHODID_EMBED)))
        .build();
  }

  private static abstract class PolicyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    PolicyServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.policyd.v1.PolicydProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("PolicyService");
    }
  }

  private static final class PolicyServiceFileDescriptorSupplier
      extends PolicyServiceBaseDescriptorSupplier {
    PolicyServiceFileDescriptorSupplier() {}
  }

  private static final class PolicyServiceMethodDescriptorSupplier
      extends PolicyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    PolicyServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (PolicyServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new PolicyServiceFileDescriptorSupplier())
              .addMethod(getCompleteMethod())
              .addMethod(getStreamCompleteMethod())
              .addMethod(getExplainMethod())
              .addMethod(getReportOutcomeMethod())
              .addMethod(getGetStatsMethod())
              .addMethod(getListModelsMethod())
              .addMethod(getEmbedMethod())
              .build();
        }
      }
    }
    return result;
  }
}
