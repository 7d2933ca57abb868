package dev.policyd.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real {@code policyd serve} (the repository's Python code, offline default policy on the
 * simulated provider) on a free loopback port. The interpreter is $POLICYD_PYTHON (default: the
 * repository's .venv, else python3); the repository is found above the working directory, or
 * named by $POLICYD_REPO.
 */
final class LiveDaemon implements AutoCloseable {
  private static final Pattern LISTENING = Pattern.compile("policyd listening on (\\S+:\\d+)");

  final String address;
  private final Process process;
  private final Path dataDir;

  private LiveDaemon(Process process, Path dataDir, String address) {
    this.process = process;
    this.dataDir = dataDir;
    this.address = address;
  }

  /**
   * Starts the daemon; each extra is YAML appended to the bundled default policy (sections it
   * lacks, such as limits: or budgets:). Without extras it runs the bundled default itself.
   */
  static LiveDaemon start(String... extra) throws IOException, InterruptedException {
    Path repo = repoRoot();
    Path dataDir = Files.createTempDirectory("policyd-java-test-");
    java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(python(repo), "-m", "policyd",
        "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir.toString()));
    if (extra.length > 0) {
      Path policy = dataDir.resolve("policy.yaml");
      String bundled = Files.readString(repo.resolve("policyd/config/default.yaml"));
      Files.writeString(policy, bundled + "\n" + String.join("\n", extra) + "\n");
      command.addAll(java.util.List.of("--config", policy.toString()));
    }
    ProcessBuilder builder = new ProcessBuilder(command)
        .directory(repo.toFile())
        .redirectErrorStream(true);
    builder.environment().put("PYTHONPATH", repo + java.io.File.pathSeparator + repo.resolve("plugins"));
    builder.environment().put("PYTHONUNBUFFERED", "1");
    Process process = builder.start();
    CompletableFuture<String> address = new CompletableFuture<>();
    StringBuffer output = new StringBuffer();
    Thread reader = new Thread(() -> {
      try (BufferedReader lines = new BufferedReader(
          new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = lines.readLine()) != null) {
          output.append(line).append('\n');
          Matcher m = LISTENING.matcher(line);
          if (m.find()) {
            address.complete(m.group(1));
          }
        }
      } catch (IOException e) {
        address.completeExceptionally(e);
      }
      address.completeExceptionally(new IllegalStateException("the daemon exited before listening:\n" + output));
    }, "policyd-output");
    reader.setDaemon(true);
    reader.start();
    try {
      return new LiveDaemon(process, dataDir, address.get(60, TimeUnit.SECONDS));
    } catch (ExecutionException | TimeoutException e) {
      process.destroyForcibly();
      throw new IllegalStateException("policyd did not start: " + e.getMessage() + "\n" + output, e);
    }
  }

  /** SIGTERM (graceful shutdown), SIGKILL after 10 s. */
  @Override
  public void close() throws InterruptedException, IOException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
    }
    try (var paths = Files.walk(dataDir)) {
      paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  private static String python(Path repo) {
    String configured = System.getenv("POLICYD_PYTHON");
    if (configured != null && !configured.isEmpty()) {
      return configured;
    }
    Path venv = repo.resolve(".venv/bin/python");
    return Files.exists(venv) ? venv.toString() : "python3";
  }

  private static Path repoRoot() {
    String configured = System.getenv("POLICYD_REPO");
    if (configured != null && !configured.isEmpty()) {
      return Path.of(configured).toAbsolutePath();
    }
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      if (Files.exists(dir.resolve("policyd/__main__.py"))) {
        return dir;
      }
    }
    throw new IllegalStateException("no policyd repository above " + Path.of("").toAbsolutePath() + "; set POLICYD_REPO");
  }
}
