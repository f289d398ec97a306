package io.vllmsnap.engine;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Starts the CPU stand-in vLLM server ({@code src/main/python/vllmsnap_standin/server.py}) as a snapshot source:
 * PID 1 of its own namespaces, through {@link SourceLauncher}. Used by the demo, the benchmark and the tests.
 */
public final class StandInServer {

    /** Sizes and port of one stand-in. */
    public record Config(int port, Path weights, long weightsBytes, long kvBytes, int compileRounds) {
    }

    private StandInServer() {
    }

    /** The server script: {@code $VLLMSNAP_HOME/src/main/python/...} or relative to the working directory. */
    public static Path script() throws EngineException {
        String home = System.getProperty("vllmsnap.home", System.getenv().getOrDefault("VLLMSNAP_HOME", "."));
        Path p = Path.of(home, "src/main/python/vllmsnap_standin/server.py").toAbsolutePath().normalize();
        if (!Files.isRegularFile(p)) {
            throw new EngineException("stand-in server not found at " + p + " (set VLLMSNAP_HOME to the repository)");
        }
        return p;
    }

    /** Starts it and waits until {@code /health} answers; the weights file is created on first use. */
    public static SourceLauncher.Source start(Config c, Duration readyTimeout) throws EngineException {
        return start(c, readyTimeout, null, "127.0.0.1", "127.0.0.1");
    }

    /**
     * Starts it in network namespace {@code netns} (null: the host's), listening on {@code bind}, and waits until it
     * answers at {@code reachAt}.
     */
    public static SourceLauncher.Source start(Config c, Duration readyTimeout, Path netns, String bind,
                                              String reachAt) throws EngineException {
        Path script = script();
        try {
            Files.createDirectories(c.weights().toAbsolutePath().getParent());
        } catch (java.io.IOException e) {
            throw new EngineException("cannot create " + c.weights().getParent() + ": " + e.getMessage(), e);
        }
        SourceLauncher.Source s = SourceLauncher.start(List.of("python3", script.toString(),
                "--host", bind, "--port", Integer.toString(c.port()), "--weights", c.weights().toAbsolutePath().toString(),
                "--weights-size", Long.toString(c.weightsBytes()), "--kv-size", Long.toString(c.kvBytes()),
                "--compile-rounds", Integer.toString(c.compileRounds())), Path.of("/"), netns);
        try {
            new VllmClient(reachAt, c.port(), Duration.ofSeconds(30)).awaitHealthy(readyTimeout);
        } catch (EngineException e) {
            s.stop();
            throw e;
        }
        return s;
    }

    /** Creates the weights file ahead of time (outside any timing), as a model download would. */
    public static void prepareWeights(Config c) throws EngineException {
        Path w = c.weights().toAbsolutePath();
        try {
            if (Files.isRegularFile(w) && Files.size(w) == c.weightsBytes()) {
                return;
            }
            Files.createDirectories(w.getParent());
            var r = io.vllmsnap.criu.ChildProcess.run(List.of("python3", "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); import server; server.ensure_weights(sys.argv[2], int(sys.argv[3]))",
                    script().getParent().toString(), w.toString(), Long.toString(c.weightsBytes())),
                    Duration.ofMinutes(10));
            if (!r.ok()) {
                throw new EngineException("cannot create weights file " + w + ": " + r.output());
            }
        } catch (java.io.IOException | io.vllmsnap.criu.ChildProcess.TimeoutException e) {
            throw new EngineException("cannot create weights file " + w + ": " + e.getMessage(), e);
        }
    }
}
