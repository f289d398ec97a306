package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives the {@code criu} binary as a child process. Knows CRIU's flags; callers describe what they want with
 * {@link DumpSpec} and {@link RestoreSpec}.
 */
public final class Criu {

    private static final Pattern VERSION = Pattern.compile("Version:\\s*(\\S+)");
    private static final int ERROR_LINES = 8;

    private final String binary;

    public Criu(String binary) {
        this.binary = binary;
    }

    /** Uses {@code $VLLMSNAP_CRIU} when set, else {@code criu} from PATH. */
    public static Criu fromEnvironment() {
        String b = System.getenv("VLLMSNAP_CRIU");
        return new Criu(b == null || b.isBlank() ? "criu" : b);
    }

    /** The CRIU version string, e.g. {@code 4.2.1}. */
    public String version() throws CriuException {
        try {
            ChildProcess.Result r = ChildProcess.run(List.of(binary, "--version"), Duration.ofSeconds(10));
            Matcher m = VERSION.matcher(r.output());
            if (r.ok() && m.find()) {
                return m.group(1);
            }
            throw new CriuException("cannot read the CRIU version from `" + binary + " --version`",
                    List.of(r.output().strip()));
        } catch (IOException e) {
            throw new CriuException("CRIU is not installed or not runnable (" + binary + "): " + e.getMessage()
                    + "; run hack/install-criu.sh as root", List.of());
        } catch (ChildProcess.TimeoutException e) {
            throw new CriuException(e.getMessage(), List.of());
        }
    }

    /** What to dump and how. {@code externalMounts} maps mount point → key. */
    public record DumpSpec(long pid, Path imageDir, boolean leaveRunning, boolean tcpEstablished,
                           boolean fileLocks, boolean externalUnixSockets, Map<String, String> externalMounts,
                           Duration timeout) {
    }

    /** Where and how to restore. {@code externalMounts} maps key → host path to bind there. */
    public record RestoreSpec(Path imageDir, Path root, Path pidFile, boolean tcpEstablished, boolean fileLocks,
                              boolean externalUnixSockets, Map<String, String> externalMounts, Duration timeout) {
    }

    public static final String DUMP_LOG = "dump.log";
    public static final String RESTORE_LOG = "restore.log";

    /** Dumps the process tree rooted at {@code spec.pid()}. The log lands in the image dir as {@value #DUMP_LOG}. */
    public void dump(DumpSpec spec) throws CriuException {
        List<String> cmd = new ArrayList<>(List.of(binary, "dump", "--tree", Long.toString(spec.pid()),
                "--images-dir", spec.imageDir().toString(), "--log-file", DUMP_LOG, "-v4"));
        if (spec.leaveRunning()) {
            cmd.add("--leave-running");
        }
        if (spec.tcpEstablished()) {
            cmd.addAll(List.of("--tcp-established", "--network-lock", "nftables"));
        }
        common(cmd, spec.fileLocks(), spec.externalUnixSockets());
        spec.externalMounts().forEach((mp, key) -> cmd.addAll(List.of("--external", "mnt[" + mp + "]:" + key)));
        run("criu dump of process " + spec.pid() + " failed", cmd, spec.imageDir().resolve(DUMP_LOG), spec.timeout());
    }

    /** Restores detached ({@code -d}); the root task's host PID is written to {@code spec.pidFile()}. */
    public void restore(RestoreSpec spec) throws CriuException {
        List<String> cmd = new ArrayList<>(List.of(binary, "restore", "--images-dir", spec.imageDir().toString(),
                "--log-file", spec.pidFile().getParent().resolve(RESTORE_LOG).toString(), "-v4",
                "--restore-detached", "--root", spec.root().toString(), "--pidfile", spec.pidFile().toString()));
        if (spec.tcpEstablished()) {
            cmd.add("--tcp-established");
        }
        common(cmd, spec.fileLocks(), spec.externalUnixSockets());
        spec.externalMounts().forEach((key, path) -> cmd.addAll(List.of("--external", "mnt[" + key + "]:" + path)));
        run("criu restore from " + spec.imageDir() + " failed", cmd, spec.pidFile().getParent().resolve(RESTORE_LOG),
                spec.timeout());
    }

    private static void common(List<String> cmd, boolean fileLocks, boolean externalUnixSockets) {
        if (fileLocks) {
            cmd.add("--file-locks");
        }
        if (externalUnixSockets) {
            cmd.add("--ext-unix-sk");
        }
    }

    private void run(String what, List<String> cmd, Path log, Duration timeout) throws CriuException {
        ChildProcess.Result r;
        try {
            r = ChildProcess.run(cmd, timeout);
        } catch (IOException e) {
            throw new CriuException(what + ": cannot run " + binary + ": " + e.getMessage(), List.of());
        } catch (ChildProcess.TimeoutException e) {
            throw new CriuException(what + ": " + e.getMessage(), errorLines(log));
        }
        if (!r.ok()) {
            List<String> lines = errorLines(log);
            if (lines.isEmpty() && !r.output().isBlank()) {
                lines = List.of(r.output().strip());
            }
            String exit = r.exitCode() > 128 ? "killed by signal " + (r.exitCode() - 128) : "exit " + r.exitCode();
            throw new CriuException(what + " (" + exit + ", log " + log + ")", lines);
        }
    }

    /** The last error lines of a CRIU log, without the harmless rlimit complaint CRIU logs on every run. */
    static List<String> errorLines(Path log) {
        try {
            if (!Files.exists(log)) {
                return List.of();
            }
            List<String> errors = Files.readAllLines(log).stream()
                    .filter(l -> l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
                    .map(l -> l.replaceFirst("^\\(\\s*[0-9.]+\\)\\s*", ""))
                    .toList();
            return errors.subList(Math.max(0, errors.size() - ERROR_LINES), errors.size());
        } catch (IOException e) {
            return List.of("(cannot read " + log + ": " + e.getMessage() + ")");
        }
    }
}
