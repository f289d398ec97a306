package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Runs an external command as an argument array with a timeout; its output goes to a file or is captured. */
public final class ChildProcess {
    private static final long WATCH_EVERY_MS = 200;

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
        return run(command, env, timeout, Watch.NONE);
    }

    /**
     * What a command works on may go away under it (a process CRIU dumps, killed with its pod): once
     * {@code gone} has said so for longer than {@code grace}, the command is killed rather than left to its timeout.
     * The grace lets a command that ends the process itself (a dump that kills the dumped tree) finish normally.
     */
    public record Watch(BooleanSupplier gone, String what, Duration grace) {
        static final Watch NONE = new Watch(() -> false, "", Duration.ZERO);
    }

    /** The same, killing the command early when {@code watch} says its subject is gone. */
    public static Result run(List<String> command, Map<String, String> env, Duration timeout, Watch watch)
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
            int code = waitFor(p, command, timeout, watch);
            return new Result(command, code, Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /** Waits for a started process; on timeout kills its descendants and it, then throws. */
    public static int waitFor(Process p, List<String> command, Duration timeout) throws TimeoutException {
        return waitFor(p, command, timeout, Watch.NONE);
    }

    private static int waitFor(Process p, List<String> command, Duration timeout, Watch watch)
            throws TimeoutException {
        long deadline = System.nanoTime() + timeout.toNanos();
        long goneSince = 0;
        try {
            while (!p.waitFor(Math.min(WATCH_EVERY_MS, Math.max(0, (deadline - System.nanoTime()) / 1_000_000)),
                    TimeUnit.MILLISECONDS)) {
                long now = System.nanoTime();
                if (now - deadline >= 0) {
                    kill(p);
                    throw new TimeoutException(command.getFirst() + " did not finish within " + timeout.toSeconds()
                            + " s and was killed");
                }
                if (!watch.gone().getAsBoolean()) {
                    goneSince = 0;
                } else if (goneSince == 0) {
                    goneSince = now;
                } else if (now - goneSince > watch.grace().toNanos()) {
                    kill(p);
                    throw new TimeoutException(command.getFirst() + " was killed: " + watch.what() + " went away while"
                            + " it ran and it did not finish within " + watch.grace().toSeconds() + " s after that");
                }
            }
            return p.exitValue();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new TimeoutException(command.getFirst() + " was interrupted and killed");
        }
    }

    private static void kill(Process p) throws InterruptedException {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
    }

    /** Whether a process is gone: no /proc entry, or only its zombie left. */
    public static boolean processGone(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            int paren = stat.lastIndexOf(')');
            return paren < 0 || paren + 2 >= stat.length() || stat.charAt(paren + 2) == 'Z';
        } catch (IOException e) {
            return true;
        }
    }

    /** A command ran past its time limit. */
    public static final class TimeoutException extends Exception {
        public TimeoutException(String message) {
            super(message);
        }
    }
}
