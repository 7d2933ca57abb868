package dev.policyd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.policyd.v1.Attempt;
import dev.policyd.v1.CompleteRequest;
import dev.policyd.v1.CompleteResponse;
import dev.policyd.v1.EmbedResponse;
import dev.policyd.v1.Embedding;
import dev.policyd.v1.Explanation;
import dev.policyd.v1.GetStatsRequest;
import dev.policyd.v1.GetStatsResponse;
import dev.policyd.v1.Message;
import dev.policyd.v1.Model;
import dev.policyd.v1.OutcomeStatus;
import dev.policyd.v1.Stakes;
import dev.policyd.v1.StatsRow;
import dev.policyd.v1.StreamCompleteResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/** Every RPC through the wrapper against a live daemon on the offline default. */
class PolicydClientTest {
  private static LiveDaemon daemon;
  private static PolicydClient client;

  @BeforeAll
  static void startDaemon() throws Exception {
    daemon = LiveDaemon.start();
    client = PolicydClient.builder(daemon.address).plaintext().build();
  }

  @AfterAll
  static void stopDaemon() throws Exception {
    if (client != null) {
      client.close();
    }
    if (daemon != null) {
      daemon.close();
    }
  }

  /** A prompt unique per test, so no answer comes from the daemon's cache. */
  private static CompleteRequest.Builder prompt(TestInfo test, String task) {
    return PolicydClient.prompt("Write a binary search in Java (" + test.getDisplayName() + ", " + System.nanoTime() + ")")
        .setTask(task);
  }

  private static boolean accepted(OutcomeStatus status) {
    return status == OutcomeStatus.OUTCOME_STATUS_ACCEPTED || status == OutcomeStatus.OUTCOME_STATUS_ACCEPTED_UNVALIDATED;
  }

  @Test
  void completeAnswersWithAttemptsCostAndExplanation(TestInfo test) {
    String id = "java-complete-" + System.nanoTime();
    CompleteResponse resp = client.complete(prompt(test, "coding").setRequestId(id).build());

    assertEquals(id, resp.getRequestId());
    assertTrue(accepted(resp.getStatus()), "status " + resp.getStatus());
    assertFalse(resp.getOutput().getContent().isEmpty());
    assertFalse(resp.getAttemptsList().isEmpty());
    double sum = resp.getAttemptsList().stream().mapToDouble(Attempt::getCostUsd).sum();
    assertTrue(resp.getTotalCostUsd() > 0);
    assertEquals(resp.getTotalCostUsd(), sum, 1e-9);
    assertFalse(resp.getExplanation().getRule().isEmpty());
    assertFalse(resp.getExplanation().getPolicyVersion().isEmpty());
  }

  @Test
  void completeAsyncResolvesTheFuture(TestInfo test) throws Exception {
    CompleteResponse resp = client.completeAsync(prompt(test, "chat").build()).get(30, TimeUnit.SECONDS);
    assertTrue(accepted(resp.getStatus()));
    assertFalse(resp.getOutput().getContent().isEmpty());
  }

  @Test
  void streamRelaysTheAnswerThenTheFinalResponse(TestInfo test) {
    List<String> deltas = new ArrayList<>();
    CompleteResponse fin = client.stream(prompt(test, "chat").build(), deltas::add);

    assertTrue(deltas.size() >= 2, "deltas: " + deltas);
    assertEquals(fin.getOutput().getContent(), String.join("", deltas));
    assertTrue(accepted(fin.getStatus()));
    assertFalse(fin.getAttemptsList().isEmpty());
  }

  @Test
  void streamAsyncEndsWithExactlyOneFinal(TestInfo test) throws Exception {
    List<StreamCompleteResponse.EventCase> kinds = new ArrayList<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    client.streamAsync(prompt(test, "coding").build(), new StreamObserver<>() {
      @Override
      public void onNext(StreamCompleteResponse event) {
        synchronized (kinds) {
          kinds.add(event.getEventCase());
        }
      }

      @Override
      public void onError(Throwable t) {
        done.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {
        done.complete(null);
      }
    });
    done.get(30, TimeUnit.SECONDS);
    synchronized (kinds) {
      assertEquals(StreamCompleteResponse.EventCase.FINAL, kinds.get(kinds.size() - 1), kinds.toString());
      assertEquals(1, kinds.stream().filter(k -> k == StreamCompleteResponse.EventCase.FINAL).count());
      assertTrue(kinds.contains(StreamCompleteResponse.EventCase.DELTA), kinds.toString());
      assertTrue(kinds.contains(StreamCompleteResponse.EventCase.ATTEMPT), kinds.toString());
    }
  }

  @Test
  void explainShowsThePlanWithoutCallingAModel(TestInfo test) {
    Explanation e = client.explain(prompt(test, "coding").setStakes(Stakes.STAKES_HIGH).build());
    assertFalse(e.getPolicy().isEmpty());
    assertFalse(e.getRule().isEmpty());
    assertFalse(e.getStrategy().isEmpty());
    assertFalse(e.getModelsList().isEmpty());
    assertTrue(e.getEstimatedCost().getBestUsd() > 0);
    assertTrue(e.getEstimatedCost().getWorstUsd() >= e.getEstimatedCost().getBestUsd());
  }

  @Test
  void embedAnswersOneUnitVectorPerTextFromOneModel() {
    List<String> texts = List.of("java embeds by policy", "java embeds texts by policy", "java embeds by policy");
    EmbedResponse resp = client.embed(PolicydClient.embedRequest(texts).build());
    assertEquals(OutcomeStatus.OUTCOME_STATUS_ACCEPTED_UNVALIDATED, resp.getStatus());
    assertFalse(resp.getModel().isEmpty());
    assertEquals(3, resp.getEmbeddingsCount());
    for (Embedding e : resp.getEmbeddingsList()) {
      assertEquals(resp.getDimensions(), e.getValuesCount());
      double norm = 0;
      for (float x : e.getValuesList()) {
        norm += (double) x * x;
      }
      assertEquals(1.0, norm, 1e-3);
    }
    assertEquals(resp.getEmbeddings(0).getValuesList(), resp.getEmbeddings(2).getValuesList());
    EmbedResponse shorter = client.embed(PolicydClient.embedRequest(texts.subList(0, 1)).setDimensions(64).build());
    assertEquals(64, shorter.getDimensions());
    assertEquals(64, shorter.getEmbeddings(0).getValuesCount());
  }

  @Test
  void embedWithoutTextsNamesTheField() {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> client.embed(PolicydClient.embedRequest(List.of()).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("texts"));
  }

  @Test
  void listModelsFiltersByTag() {
    List<Model> all = client.listModels("", "");
    List<Model> coding = client.listModels(null, "coding");
    assertFalse(coding.isEmpty());
    assertTrue(coding.size() < all.size());
    for (Model m : coding) {
      assertTrue(m.getTagsList().contains("coding"), m.getId() + " " + m.getTagsList());
      assertTrue(m.getContextWindow() > 0);
    }
  }

  @Test
  void expiredDeadlineIsDeadlineExceeded(TestInfo test) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.blocking().withDeadlineAfter(10, TimeUnit.MILLISECONDS).complete(prompt(test, "coding").build()));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
  }

  @Test
  void defaultDeadlineBoundsCallsThatSetNone(TestInfo test) throws Exception {
    try (PolicydClient hurried = PolicydClient.builder(daemon.address).plaintext()
        .defaultDeadline(Duration.ofMillis(10)).build()) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> hurried.complete(prompt(test, "coding").build()));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
      StatusRuntimeException s = assertThrows(StatusRuntimeException.class,
          () -> hurried.stream(prompt(test, "coding").build(), text -> { }));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, s.getStatus().getCode());
      ExecutionException a = assertThrows(ExecutionException.class,
          () -> hurried.completeAsync(prompt(test, "coding").build()).get(30, TimeUnit.SECONDS));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, Status.fromThrowable(a.getCause()).getCode());
    }
  }

  @Test
  void invalidRequestNamesTheField() {
    CompleteRequest bad = CompleteRequest.newBuilder().addMessages(Message.newBuilder().setContent("no role")).build();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.complete(bad));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("messages[0].role"), e.getStatus().getDescription());
  }

  @Test
  void unknownPolicyIsNotFound(TestInfo test) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.complete(prompt(test, "coding").setPolicy("no-such-policy").build()));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }

  /**
   * True when the daemon answered UNIMPLEMENTED because it runs no ledger: the only acceptable
   * reason for ReportOutcome and GetStats not to answer.
   */
  private static boolean ledgerAbsent(StatusRuntimeException e) {
    if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
      return false;
    }
    assertTrue(e.getStatus().getDescription().contains("ledger"), "UNIMPLEMENTED for another reason: " + e);
    System.err.println("the daemon runs no ledger: " + e.getStatus().getDescription());
    return true;
  }

  @Test
  void reportOutcomeOfUnknownRequestIsNotFound() {
    try {
      client.reportOutcome("never-issued-" + System.nanoTime(), false, null);
      fail("an unknown request id was accepted");
    } catch (StatusRuntimeException e) {
      if (!ledgerAbsent(e)) {
        assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode(), e.toString());
      }
    }
  }

  @Test
  void reportOutcomeIsIdempotent(TestInfo test) {
    CompleteResponse resp = client.complete(prompt(test, "coding").build());
    boolean first;
    try {
      first = client.reportOutcome(resp.getRequestId(), false, "did not compile");
    } catch (StatusRuntimeException e) {
      if (ledgerAbsent(e)) {
        return;
      }
      throw e;
    }
    assertTrue(first, "the first report must be recorded");
    assertFalse(client.reportOutcome(resp.getRequestId(), false, "did not compile"), "the same report again");
  }

  @Test
  void getStatsCountsAnsweredRequests(TestInfo test) {
    client.complete(prompt(test, "coding").build());
    GetStatsResponse stats;
    try {
      stats = client.getStats(GetStatsRequest.getDefaultInstance());
    } catch (StatusRuntimeException e) {
      if (ledgerAbsent(e)) {
        return;
      }
      throw e;
    }
    assertTrue(stats.getRowsList().stream().mapToLong(StatsRow::getRequests).sum() >= 1, stats.toString());
    assertFalse(stats.getPolicyVersion().isEmpty());
  }
}
