package dev.policyd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.BadRequest;
import com.google.rpc.QuotaFailure;
import dev.policyd.v1.Attempt;
import dev.policyd.v1.CompleteRequest;
import dev.policyd.v1.CompleteResponse;
import dev.policyd.v1.ListModelsRequest;
import dev.policyd.v1.Message;
import dev.policyd.v1.OutcomeStatus;
import dev.policyd.v1.ReportOutcomeRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/** The contract a Java service relies on, against a live daemon: errors a program can read. */
class ContractTest {
  /** Two tenants with limits the tests can hit; every other tenant is unlimited. */
  private static final String REFUSALS = """
      limits: {tenants: {throttled: {requests_per_minute: 1}}}
      budgets: {tenants: {broke: {daily_usd: 0.000001}}}
      """;

  private static LiveDaemon daemon;
  private static PolicydClient client;

  @BeforeAll
  static void startDaemon() throws Exception {
    daemon = LiveDaemon.start(REFUSALS);
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

  private static CompleteRequest.Builder prompt(TestInfo test) {
    return PolicydClient.prompt("Say hello (" + test.getDisplayName() + ", " + System.nanoTime() + ")").setTask("chat");
  }

  @Test
  void invalidRequestCarriesItsFieldViolation() {
    CompleteRequest bad = CompleteRequest.newBuilder().addMessages(Message.newBuilder().setContent("no role")).build();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.complete(bad));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertEquals("INVALID_FIELD", PolicydErrors.reasonOf(e));
    assertEquals(PolicydErrors.DOMAIN, PolicydErrors.errorInfo(e).orElseThrow().getDomain());
    List<BadRequest.FieldViolation> violations = PolicydErrors.fieldViolations(e);
    assertEquals(1, violations.size());
    assertEquals("messages[0].role", violations.get(0).getField());
    assertEquals(Optional.empty(), PolicydErrors.retryDelay(e));
  }

  @Test
  void rateLimitedCallSaysWhenToRetry(TestInfo test) {
    StatusRuntimeException refused = null;
    for (int i = 0; i < 3 && refused == null; i++) { // one a minute: the 2nd (3rd across a minute boundary) is refused
      try {
        client.complete(prompt(test).setTenant("throttled").build());
      } catch (StatusRuntimeException e) {
        refused = e;
      }
    }
    assertTrue(refused != null, "the throttled tenant must be refused");
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getStatus().getCode());
    assertEquals("RATE_LIMITED", PolicydErrors.reasonOf(refused));
    Duration delay = PolicydErrors.retryDelay(refused).orElseThrow();
    assertTrue(!delay.isNegative() && !delay.isZero() && delay.compareTo(Duration.ofMinutes(1)) <= 0, delay.toString());
    assertEquals("throttled", PolicydErrors.metadataOf(refused).get("tenant"));
  }

  @Test
  void budgetRefusalNamesTheBudget(TestInfo test) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.complete(prompt(test).setTenant("broke").build()));
    assertEquals("BUDGET_EXHAUSTED", PolicydErrors.reasonOf(e));
    List<QuotaFailure.Violation> quota = PolicydErrors.quotaViolations(e);
    assertEquals(1, quota.size());
    assertEquals("budget:tenant/broke/daily", quota.get(0).getSubject());
    assertEquals("tenant/broke/daily", PolicydErrors.metadataOf(e).get("budget"));
  }

  @Test
  void reportWithoutSuccessIsInvalidArgumentAndTheRequestFormWorks(TestInfo test) {
    String id = client.complete(prompt(test).build()).getRequestId();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.reportOutcome(ReportOutcomeRequest.newBuilder().setRequestId(id).setNote("forgot").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertEquals("success", PolicydErrors.fieldViolations(e).get(0).getField());
    assertTrue(client.reportOutcome(PolicydClient.report(id, false).setScore(0.2).build()).getChanged());
    assertTrue(client.listModels(ListModelsRequest.newBuilder().setTag("coding").build()).size() > 0);
  }

  @Test
  void reusedRequestIdIsReplayedOrRefused(TestInfo test) {
    String id = "java-idem-" + System.nanoTime();
    CompleteRequest request = prompt(test).setRequestId(id).build();
    CompleteResponse first = client.complete(request);
    CompleteResponse again = client.complete(request);
    assertTrue(!first.getReplayed() && again.getReplayed());
    assertEquals(first.getDecisionId(), again.getDecisionId());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> client.complete(prompt(test).setRequestId(id).build()));
    assertEquals(Status.Code.ALREADY_EXISTS, e.getStatus().getCode());
    assertEquals("REQUEST_ID_REUSED", PolicydErrors.reasonOf(e));
  }

  @Test
  void streamDeliversEachAttemptOnce(TestInfo test) {
    List<Attempt> attempts = new java.util.ArrayList<>();
    StringBuilder text = new StringBuilder();
    CompleteResponse last = client.stream(prompt(test).setTask("creative").build(), text::append, attempts::add);
    // A rejected draft's text (Attempt.output) is set aside after its event was sent: only the
    // final response carries it, so compare the attempts without it.
    assertEquals(withoutOutput(last.getAttemptsList()), withoutOutput(attempts));
    assertTrue(attempts.size() >= 2, "a draft and the judge's verdict");
    for (int i = 0; i < attempts.size(); i++) {
      assertEquals(i, attempts.get(i).getIndex());
    }
    assertEquals(last.getOutput().getContent(), text.toString());
  }

  @Test
  void acceptedTellsAnAnswerFromARefusal(TestInfo test) {
    CompleteResponse resp = client.complete(prompt(test).build());
    assertTrue(PolicydClient.accepted(resp) && !resp.getOutput().getContent().isEmpty());
    for (OutcomeStatus s : List.of(OutcomeStatus.OUTCOME_STATUS_REJECTED, OutcomeStatus.OUTCOME_STATUS_BUDGET_EXHAUSTED,
        OutcomeStatus.OUTCOME_STATUS_DEADLINE_EXCEEDED, OutcomeStatus.OUTCOME_STATUS_UPSTREAM_FAILED)) {
      assertTrue(!PolicydClient.accepted(CompleteResponse.newBuilder().setStatus(s).build()), s.toString());
    }
  }

  @Test
  void errorsWithoutDetailsReadAsEmpty() {
    StatusRuntimeException plain = Status.UNAVAILABLE.withDescription("no details").asRuntimeException();
    assertEquals("", PolicydErrors.reasonOf(plain));
    assertEquals(Optional.empty(), PolicydErrors.retryDelay(plain));
    assertEquals(List.of(), PolicydErrors.fieldViolations(new IllegalStateException("not grpc")));
  }

  private static List<Attempt> withoutOutput(List<Attempt> attempts) {
    return attempts.stream().map(a -> a.toBuilder().clearOutput().build()).toList();
  }
}
