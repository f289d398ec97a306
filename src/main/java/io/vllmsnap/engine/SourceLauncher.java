package io.vllmsnap.engine;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Starts a process the way a container runtime would, so CRIU can dump it and restore copies of it: as PID 1 and
 * session leader of its own PID and mount namespaces (with its own /proc), its stdio reopened on /dev/null inside
 * the namespace and every other inherited descriptor closed (CRIU cannot dump a descriptor opened in another mount
 * namespace). Network-namespace handles the host had mounted ({@code ip netns add} puts them under /run/netns) are
 * unmounted in the copy: they come and go with other software, and a restore fails when one named in the image has
 * gone from the host.
 */
public final class SourceLauncher {

    /** Runs inside the namespaces before the real command. */
    private static final String INIT = """
            exec </dev/null >/dev/null 2>&1
            grep ' - nsfs ' /proc/self/mountinfo | cut -d' ' -f5 | while read -r mp; do umount -l "$mp"; done
            for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"; done
            exec "$@"
            """;

    private SourceLauncher() {
    }

    /** A started source. {@link #pid()} is the host PID of the namespace's PID 1: the one to snapshot. */
    public record Source(Process unshare, long pid) {
        public boolean alive() {
            return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
        }

        /** Kills the whole namespace (killing its PID 1 kills every process in it) and waits until it is gone. */
        public void stop() {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            unshare.destroyForcibly();
            try {
                unshare.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            Processes.awaitGone(pid, Duration.ofSeconds(30));
        }
    }

    public static Source start(List<String> command, Path workDir) throws EngineException {
        return start(command, workDir, null);
    }

    /** As {@link #start(List, Path)}, inside network namespace {@code netns} (a pod's) when not null. */
    public static Source start(List<String> command, Path workDir, Path netns) throws EngineException {
        List<String> cmd = new ArrayList<>();
        if (netns != null) {
            cmd.add("nsenter");
            cmd.add("--net=" + netns);
        }
        cmd.addAll(List.of("unshare", "--pid", "--fork", "--mount", "--mount-proc",
                "setsid", "bash", "-c", INIT, "vllmsnap-init"));
        cmd.addAll(command);
        Process p;
        try {
            p = new ProcessBuilder(cmd).directory(workDir.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
        } catch (IOException e) {
            throw new EngineException("cannot start " + command + " under unshare: " + e.getMessage(), e);
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < deadline) {
            // nsenter execs unshare, so the namespace's PID 1 is always the child of the process we started
            Optional<ProcessHandle> child = p.children().findFirst();
            if (child.isPresent()) {
                return new Source(p, child.get().pid());
            }
            if (!p.isAlive()) {
                throw new EngineException("unshare exited with " + p.exitValue() + " before starting " + command
                        + " (root needed)");
            }
            Processes.pause(Duration.ofMillis(5));
        }
        p.destroyForcibly();
        throw new EngineException("unshare did not start " + command + " within 10 s");
    }
}
