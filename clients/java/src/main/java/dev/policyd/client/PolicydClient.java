package dev.policyd.client;

import dev.policyd.v1.Attempt;
import dev.policyd.v1.CompleteRequest;
import dev.policyd.v1.CompleteResponse;
import dev.policyd.v1.EmbedRequest;
import dev.policyd.v1.EmbedResponse;
import dev.policyd.v1.Explanation;
import dev.policyd.v1.GetStatsRequest;
import dev.policyd.v1.GetStatsResponse;
import dev.policyd.v1.ListModelsRequest;
import dev.policyd.v1.Message;
import dev.policyd.v1.Model;
import dev.policyd.v1.OutcomeStatus;
import dev.policyd.v1.PolicyServiceGrpc;
import dev.policyd.v1.ReportOutcomeRequest;
import dev.policyd.v1.ReportOutcomeResponse;
import dev.policyd.v1.Role;
import dev.policyd.v1.StreamCompleteResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A thin client for the policyd daemon over the generated stubs ({@code dev.policyd.v1}).
 *
 * <p>Built by {@link #builder(String)} with the defaults a service wants: a deadline on every call
 * that sets none, keepalive, retries of UNAVAILABLE through the gRPC service config, and a bearer
 * token in the {@code authorization} metadata. Methods take and return the generated messages;
 * {@link #blocking()} and {@link #async()} give the generated stubs themselves, with the same
 * defaults. Thread-safe; {@link #close()} it when done.
 *
 * <pre>{@code
 * try (PolicydClient client = PolicydClient.builder("127.0.0.1:50051").plaintext().build()) {
 *   CompleteResponse resp = client.complete(PolicydClient.prompt("Write a binary search").setTask("coding").build());
 *   if (PolicydClient.accepted(resp)) {
 *     System.out.println(resp.getOutput().getContent());
 *   }
 * }
 * }</pre>
 */
public final class PolicydClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final PolicyServiceGrpc.PolicyServiceBlockingStub blocking;
  private final PolicyServiceGrpc.PolicyServiceStub async;

  PolicydClient(ManagedChannel channel, Duration defaultDeadline, String token) {
    this.channel = channel;
    Channel intercepted = ClientInterceptors.intercept(channel, new DefaultDeadline(defaultDeadline));
    PolicyServiceGrpc.PolicyServiceBlockingStub b = PolicyServiceGrpc.newBlockingStub(intercepted);
    PolicyServiceGrpc.PolicyServiceStub a = PolicyServiceGrpc.newStub(intercepted);
    if (token != null && !token.isEmpty()) {
      BearerToken credentials = new BearerToken(token);
      b = b.withCallCredentials(credentials);
      a = a.withCallCredentials(credentials);
    }
    this.blocking = b;
    this.async = a;
  }

  /** A builder for a client of the daemon at {@code target} ("host:port" or any gRPC target). */
  public static PolicydClientBuilder builder(String target) {
    return new PolicydClientBuilder(target);
  }

  /**
   * Whether the response is an answer to use: ACCEPTED or ACCEPTED_UNVALIDATED. A response without
   * an error can still be REJECTED, BUDGET_EXHAUSTED, DEADLINE_EXCEEDED or UPSTREAM_FAILED, with no
   * output to use.
   */
  public static boolean accepted(CompleteResponse response) {
    return response.getStatus() == OutcomeStatus.OUTCOME_STATUS_ACCEPTED
        || response.getStatus() == OutcomeStatus.OUTCOME_STATUS_ACCEPTED_UNVALIDATED;
  }

  /** A request with one user message; set the task, stakes, constraints... then build it. */
  public static CompleteRequest.Builder prompt(String text) {
    return CompleteRequest.newBuilder()
        .addMessages(Message.newBuilder().setRole(Role.ROLE_USER).setContent(text));
  }

  /** The generated blocking stub, with this client's defaults (e.g. {@code .withDeadlineAfter}). */
  public PolicyServiceGrpc.PolicyServiceBlockingStub blocking() {
    return blocking;
  }

  /** The generated async stub, with this client's defaults. */
  public PolicyServiceGrpc.PolicyServiceStub async() {
    return async;
  }

  /**
   * Runs the request's policy and returns the final answer; its status says whether it was
   * accepted. Errors are {@link io.grpc.StatusRuntimeException}s (see the proto for the codes).
   */
  public CompleteResponse complete(CompleteRequest request) {
    return blocking.complete(request);
  }

  /** {@link #complete} without blocking; the future fails with the call's status exception. */
  public CompletableFuture<CompleteResponse> completeAsync(CompleteRequest request) {
    CompletableFuture<CompleteResponse> future = new CompletableFuture<>();
    async.complete(request, new StreamObserver<>() {
      @Override
      public void onNext(CompleteResponse value) {
        future.complete(value);
      }

      @Override
      public void onError(Throwable t) {
        future.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {
        future.completeExceptionally(Status.INTERNAL.withDescription("no response").asRuntimeException());
      }
    });
    return future;
  }

  /**
   * Complete with the answer's text handed to {@code onDelta} as it arrives. Returns the final
   * response, whose output holds the whole text. A stream that fails after some text throws;
   * a stream that ends without its final event throws {@link IllegalStateException}.
   */
  public CompleteResponse stream(CompleteRequest request, Consumer<String> onDelta) {
    return stream(request, onDelta, attempt -> { });
  }

  /**
   * {@link #stream(CompleteRequest, Consumer)} that also hands each attempt (model call, validator
   * run) to {@code onAttempt} once, as soon as it is finished; a validator's attempt arrives with
   * its verdict.
   */
  public CompleteResponse stream(CompleteRequest request, Consumer<String> onDelta, Consumer<Attempt> onAttempt) {
    // Read to the end (the final event is the last): an abandoned blocking iterator would hold
    // the call open until its deadline.
    CompleteResponse last = null;
    Iterator<StreamCompleteResponse> events = blocking.streamComplete(request);
    while (events.hasNext()) {
      StreamCompleteResponse event = events.next();
      switch (event.getEventCase()) {
        case DELTA -> onDelta.accept(event.getDelta());
        case ATTEMPT -> onAttempt.accept(event.getAttempt());
        case FINAL -> last = event.getFinal();
        default -> { }
      }
    }
    if (last == null) {
      throw new IllegalStateException("policyd: stream ended without a final response");
    }
    return last;
  }

  /** Every stream event (deltas, attempts, then one final) to {@code observer}, without blocking. */
  public void streamAsync(CompleteRequest request, StreamObserver<StreamCompleteResponse> observer) {
    async.streamComplete(request, observer);
  }

  /** The decision the policy would make for the request, without calling any model. */
  public Explanation explain(CompleteRequest request) {
    return blocking.explain(request).getExplanation();
  }

  /**
   * Tells the daemon whether the answer to {@code requestId} served its purpose; it counts in the
   * cost per successful outcome. Returns false when the same report was already recorded. An
   * unknown request id is NOT_FOUND.
   */
  public boolean reportOutcome(String requestId, boolean success, String note) {
    return reportOutcome(report(requestId, success).setNote(note == null ? "" : note).build()).getChanged();
  }

  /** A report on {@code requestId}; set a note or a score, then build it for {@link #reportOutcome(ReportOutcomeRequest)}. */
  public static ReportOutcomeRequest.Builder report(String requestId, boolean success) {
    return ReportOutcomeRequest.newBuilder().setRequestId(requestId).setSuccess(success);
  }

  /**
   * Sends a report (build it with {@link #report}); the request form grows with the contract. A
   * request without {@code success} is INVALID_ARGUMENT; an unknown request id NOT_FOUND.
   */
  public ReportOutcomeResponse reportOutcome(ReportOutcomeRequest request) {
    return blocking.reportOutcome(request);
  }

  /** Cost per successful outcome and related figures, grouped as the request asks. */
  public GetStatsResponse getStats(GetStatsRequest request) {
    return blocking.getStats(request);
  }

  /**
   * One vector per text, in order, all from the one embedding model the matching rule chose (a
   * fallback re-embeds the whole batch). Set dimensions, task, labels or constraints on the request.
   */
  public EmbedResponse embed(EmbedRequest request) {
    return blocking.embed(request);
  }

  /** An EmbedRequest builder for these texts. */
  public static EmbedRequest.Builder embedRequest(List<String> texts) {
    return EmbedRequest.newBuilder().addAllTexts(texts);
  }

  /** The model catalog, filtered by provider and tag when they are not empty. */
  public List<Model> listModels(String provider, String tag) {
    return listModels(ListModelsRequest.newBuilder()
        .setProvider(provider == null ? "" : provider).setTag(tag == null ? "" : tag).build());
  }

  /** The model catalog, filtered as the request says; the request form grows with the contract. */
  public List<Model> listModels(ListModelsRequest request) {
    return blocking.listModels(request).getModelsList();
  }

  /** Closes the channel, letting calls in flight finish for up to 5 seconds. */
  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }

  /** Gives a call without a deadline the client's default one. */
  private static final class DefaultDeadline implements ClientInterceptor {
    private final Duration deadline;

    DefaultDeadline(Duration deadline) {
      this.deadline = deadline;
    }

    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      if (options.getDeadline() == null && !deadline.isZero()) {
        options = options.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
      }
      return next.newCall(method, options);
    }
  }
}
