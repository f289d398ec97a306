package io.vllmsnap.cuda;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs an external command as an argument array with a timeout; its stdout and stderr come back together. */
public interface CommandRunner {
    record Result(int exitCode, String output) {
    }

    Result run(List<String> command, Duration timeout);

    /** The real runner: a child process, killed when the timeout passes. */
    static CommandRunner system() {
        return (command, timeout) -> {
            try {
                Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
                p.getOutputStream().close();
                // Output is small (a state word or an error line), so reading after exit cannot block the child.
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    throw new CudaException(String.join(" ", command), "'" + String.join(" ", command)
                            + "' did not finish within " + timeout.toSeconds() + " s and was killed");
                }
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                return new Result(p.exitValue(), out);
            } catch (IOException e) {
                throw new CudaUnavailableException("cannot run " + command.getFirst() + ": " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CudaException(command.getFirst(), "interrupted while running " + command.getFirst());
            }
        };
    }
}
