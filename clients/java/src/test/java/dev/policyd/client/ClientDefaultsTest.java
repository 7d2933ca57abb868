package dev.policyd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.policyd.v1.ListModelsRequest;
import dev.policyd.v1.ListModelsResponse;
import dev.policyd.v1.Model;
import dev.policyd.v1.PolicyServiceGrpc;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The client's defaults seen from a server: a PolicyService on a loopback port that records
 * the authorization header and fails the first calls with UNAVAILABLE.
 */
class ClientDefaultsTest {
  private final List<String> authorization = new CopyOnWriteArrayList<>();
  private final AtomicInteger calls = new AtomicInteger();
  private Server server;

  private String serve(int unavailable) throws Exception {
    PolicyServiceGrpc.PolicyServiceImplBase service = new PolicyServiceGrpc.PolicyServiceImplBase() {
      @Override
      public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> response) {
        if (calls.incrementAndGet() <= unavailable) {
          response.onError(Status.UNAVAILABLE.withDescription("draining").asRuntimeException());
          return;
        }
        response.onNext(ListModelsResponse.newBuilder().addModels(Model.newBuilder().setId("m")).build());
        response.onCompleted();
      }
    };
    ServerInterceptor record = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String value = headers.get(BearerToken.AUTHORIZATION);
        if (value != null) {
          authorization.add(value);
        }
        return Contexts.interceptCall(io.grpc.Context.current(), call, headers, next);
      }
    };
    server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
        .addService(ServerInterceptors.intercept(service, record))
        .build()
        .start();
    return "127.0.0.1:" + server.getPort();
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.shutdownNow();
    }
  }

  @Test
  void tokenIsSentAsBearerOnEveryCall() throws Exception {
    try (PolicydClient client = PolicydClient.builder(serve(0)).plaintext().token("s3cret").build()) {
      client.listModels("", "");
      client.blocking().listModels(ListModelsRequest.getDefaultInstance());
    }
    assertEquals(List.of("Bearer s3cret", "Bearer s3cret"), authorization);
  }

  @Test
  void tokenIsNeverPrinted() {
    assertFalse(new BearerToken("s3cret").toString().contains("s3cret"));
  }

  @Test
  void unavailableIsRetriedByTheServiceConfig() throws Exception {
    try (PolicydClient client = PolicydClient.builder(serve(2)).plaintext().build()) {
      assertEquals(1, client.listModels("", "").size());
    }
    assertEquals(3, calls.get(), "two UNAVAILABLE, then success");
  }

  @Test
  void retriesStopAfterFourAttempts() throws Exception {
    try (PolicydClient client = PolicydClient.builder(serve(10)).plaintext().build()) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.listModels("", ""));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    }
    assertEquals(4, calls.get());
  }
}
