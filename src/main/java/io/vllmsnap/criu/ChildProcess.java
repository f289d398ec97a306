package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs an external command as an argument array with a timeout; its output goes to a file or is captured. */
public final class ChildProcess {

    private ChildProcess() {
    }

    /** Result of a finished command: exit code and its combined stdout/stderr. */
    public record Result(List<String> command, int exitCode, String output) {
        public boolean ok() {
            return exitCode == 0;
        }
    }

    /** Runs the command to completion; kills it (and its descendants) when it outlives {@code timeout}. */
    public static Result run(List<String> command, Duration timeout) throws IOException, TimeoutException {
        return run(command, Map.of(), timeout);
    }

    /** The same, with {@code env} added to this process's environment. */
    public static Result run(List<String> command, Map<String, String> env, Duration timeout)
            throws IOException, TimeoutException {
        Path out = Files.createTempFile("vllmsnap-cmd", ".out");
        try {
            ProcessBuilder pb = new ProcessBuilder(command);
            pb.environment().putAll(env);
            Process p = pb
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .start();
            int code = waitFor(p, command, timeout);
            return new Result(command, code, Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** Waits for a started process; on timeout kills its descendants and it, then throws. */
    public static int waitFor(Process p, List<String> command, Duration timeout) throws TimeoutException {
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                throw new TimeoutException(command.getFirst() + " did not finish within " + timeout.toSeconds()
                        + " s and was killed");
            }
            return p.exitValue();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new TimeoutException(command.getFirst() + " was interrupted and killed");
        }
    }

    /** A command ran past its time limit. */
    public static final class TimeoutException extends Exception {
        public TimeoutException(String message) {
            super(message);
        }
    }
}
