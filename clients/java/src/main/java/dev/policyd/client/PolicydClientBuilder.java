package dev.policyd.client;

import io.grpc.ManagedChannelBuilder;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Builds a {@link PolicydClient}; every setting has a default fit for a service. */
public final class PolicydClientBuilder {
  /** The deadline of calls that set none; matches the daemon's default request deadline. */
  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(30);

  /**
   * Retries a call that failed with UNAVAILABLE (the daemon restarting, draining, or not up yet)
   * up to 3 more times with exponential backoff. Other codes are answers and are never retried.
   */
  public static final Map<String, Object> DEFAULT_SERVICE_CONFIG = Map.of(
      "methodConfig", List.of(Map.of(
          "name", List.of(Map.of("service", "policyd.v1.PolicyService")),
          "retryPolicy", Map.of(
              "maxAttempts", 4.0,
              "initialBackoff", "0.1s",
              "maxBackoff", "2s",
              "backoffMultiplier", 2.0,
              "retryableStatusCodes", List.of("UNAVAILABLE")))));

  private final String target;
  private boolean plaintext;
  private String token;
  private Duration deadline = DEFAULT_DEADLINE;
  private Map<String, ?> serviceConfig = DEFAULT_SERVICE_CONFIG;
  // Every 5 minutes: the shortest ping interval gRPC servers accept by default.
  private Duration keepAlive = Duration.ofMinutes(5);

  PolicydClientBuilder(String target) {
    this.target = target;
  }

  /** Plaintext HTTP/2, for a daemon on localhost or in the same pod (default: TLS). */
  public PolicydClientBuilder plaintext() {
    this.plaintext = true;
    return this;
  }

  /** Sends {@code authorization: Bearer <token>} with every call. */
  public PolicydClientBuilder token(String token) {
    this.token = token;
    return this;
  }

  /** The deadline of calls that set none (default {@link #DEFAULT_DEADLINE}; zero: none). */
  public PolicydClientBuilder defaultDeadline(Duration deadline) {
    if (deadline.isNegative()) {
      throw new IllegalArgumentException("defaultDeadline: must not be negative (got " + deadline + ")");
    }
    this.deadline = deadline;
    return this;
  }

  /** Replaces {@link #DEFAULT_SERVICE_CONFIG} (gRPC service config as parsed JSON). */
  public PolicydClientBuilder serviceConfig(Map<String, ?> serviceConfig) {
    this.serviceConfig = serviceConfig;
    return this;
  }

  /** Keepalive ping interval on an idle connection with calls in flight (default 5 minutes). */
  public PolicydClientBuilder keepAlive(Duration interval) {
    this.keepAlive = interval;
    return this;
  }

  public PolicydClient build() {
    ManagedChannelBuilder<?> channel = ManagedChannelBuilder.forTarget(target)
        .defaultServiceConfig(serviceConfig)
        .enableRetry()
        .keepAliveTime(keepAlive.toNanos(), TimeUnit.NANOSECONDS)
        .keepAliveTimeout(20, TimeUnit.SECONDS);
    if (plaintext) {
      channel.usePlaintext();
    } else {
      channel.useTransportSecurity();
    }
    return new PolicydClient(channel.build(), deadline, token);
  }
}
