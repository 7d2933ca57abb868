package dev.policyd.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a program reads from a policyd error: the {@code google.rpc} details of its status.
 *
 * <p>Every error the daemon answers carries an {@link ErrorInfo} (a stable UPPER_SNAKE reason,
 * the domain {@value #DOMAIN} and metadata such as {@code policy}, {@code budget}, {@code model},
 * {@code provider}, {@code spent_usd}), plus a {@link BadRequest} for INVALID_ARGUMENT, a
 * {@link RetryInfo} for rate limits and upstream {@code Retry-After}, and a {@link QuotaFailure}
 * for budget refusals. These methods take the {@link io.grpc.StatusRuntimeException} (or any
 * throwable whose cause chain holds one) and answer empty for an error without details.
 *
 * <pre>{@code
 * try {
 *   client.complete(request);
 * } catch (StatusRuntimeException e) {
 *   if (PolicydErrors.reasonOf(e).equals("RATE_LIMITED")) {
 *     Thread.sleep(PolicydErrors.retryDelay(e).orElse(Duration.ofSeconds(1)).toMillis());
 *   }
 * }
 * }</pre>
 */
public final class PolicydErrors {
  /** The ErrorInfo domain of every error the daemon answers. */
  public static final String DOMAIN = "policyd.dev";

  private PolicydErrors() {}

  /** The ErrorInfo detail of the error, if it carries one. */
  public static Optional<ErrorInfo> errorInfo(Throwable error) {
    return detail(error, ErrorInfo.class);
  }

  /** The ErrorInfo reason ("RATE_LIMITED", "BUDGET_EXHAUSTED", ...), or "" when there is none. */
  public static String reasonOf(Throwable error) {
    return errorInfo(error).map(ErrorInfo::getReason).orElse("");
  }

  /** The ErrorInfo metadata ("policy", "budget", "spent_usd", ...); empty when there is none. */
  public static Map<String, String> metadataOf(Throwable error) {
    return errorInfo(error).map(ErrorInfo::getMetadataMap).orElse(Map.of());
  }

  /** How long the daemon asks the caller to wait before retrying (RetryInfo), if it said so. */
  public static Optional<Duration> retryDelay(Throwable error) {
    return detail(error, RetryInfo.class)
        .filter(RetryInfo::hasRetryDelay)
        .map(r -> Duration.ofSeconds(r.getRetryDelay().getSeconds(), r.getRetryDelay().getNanos()));
  }

  /** The BadRequest field violations of an INVALID_ARGUMENT error (field path and problem). */
  public static List<BadRequest.FieldViolation> fieldViolations(Throwable error) {
    return detail(error, BadRequest.class).map(BadRequest::getFieldViolationsList).orElse(List.of());
  }

  /** The QuotaFailure violations of a budget refusal; the subject names the budget. */
  public static List<QuotaFailure.Violation> quotaViolations(Throwable error) {
    return detail(error, QuotaFailure.class).map(QuotaFailure::getViolationsList).orElse(List.of());
  }

  private static <T extends com.google.protobuf.Message> Optional<T> detail(Throwable error, Class<T> type) {
    com.google.rpc.Status status = error == null ? null : StatusProto.fromThrowable(error);
    if (status == null) {
      return Optional.empty();
    }
    for (Any any : status.getDetailsList()) {
      if (any.is(type)) {
        try {
          return Optional.of(any.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          return Optional.empty();
        }
      }
    }
    return Optional.empty();
  }
}
