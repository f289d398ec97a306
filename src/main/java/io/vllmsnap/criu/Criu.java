package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives the {@code criu} binary as a child process. Knows CRIU's flags; callers describe what they want with
 * {@link DumpSpec} and {@link RestoreSpec} (a process tree on this host) or {@link ContainerDump} and
 * {@link ContainerRestore} (a whole container, restored into another one).
 */
public final class Criu {

    private static final Pattern VERSION = Pattern.compile("Version:\\s*(\\S+)");
    private static final int ERROR_LINES = 8;
    private static final Duration DUMPED_GONE_GRACE = Duration.ofSeconds(5);

    private final String binary;
    private final Path pluginDir;
    /** Empty: as {@link HugePageFill#fromEnvironment()} decides, at the first restore. */
    private final Optional<Boolean> hugePageFill;
    /** Empty: as {@link ImageMapFill#fromEnvironment()} says. */
    private final Optional<Boolean> mapFill;

    public Criu(String binary) {
        this(binary, null, Optional.empty(), Optional.empty());
    }

    private Criu(String binary, Path pluginDir, Optional<Boolean> hugePageFill, Optional<Boolean> mapFill) {
        this.binary = binary;
        this.pluginDir = pluginDir;
        this.hugePageFill = hugePageFill;
        this.mapFill = mapFill;
    }

    /**
     * The same CRIU loading its plugins from {@code dir} ({@code --libdir}) at dump and restore: with CRIU's CUDA plugin
     * there, CRIU does the GPU steps itself (through {@code cuda-checkpoint} on PATH).
     */
    public Criu withPluginDir(Path dir) {
        return new Criu(binary, dir, hugePageFill, mapFill);
    }

    /** Uses {@code $VLLMSNAP_CRIU} when set, else {@code criu} from PATH. */
    public static Criu fromEnvironment() {
        String b = System.getenv("VLLMSNAP_CRIU");
        return new Criu(b == null || b.isBlank() ? "criu" : b);
    }

    /** The same CRIU, with restores filling large dense memory areas through transparent huge pages (or not). */
    public Criu withHugePageFill(boolean on) {
        return new Criu(binary, pluginDir, Optional.of(on), mapFill);
    }

    /** The same CRIU, with restores mapping memory from the image (copy-on-write) instead of copying it (or not). */
    public Criu withMapFill(boolean on) {
        return new Criu(binary, pluginDir, hugePageFill, Optional.of(on));
    }

    /** Whether restores map memory from the image (see {@link ImageMapFill}). */
    public boolean mapFill() {
        return mapFill.orElseGet(ImageMapFill::fromEnvironment);
    }

    /**
     * Whether restores fill copied memory through huge pages (see {@link HugePageFill}). Never with map fill: little
     * is copied then, and on the H100 the huge pages made that restore slower (criu phase 0.20 against 0.14 s for the
     * 1.5B shape, bench/results/gpu-h100-mapfill-2026-11-23.json), so the host is not even probed.
     */
    public boolean hugePageFill() {
        return !mapFill() && hugePageFill.orElseGet(() -> HugePageFill.fromEnvironment().enabled());
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
                           Duration timeout, String externalNetns) {
    }

    /** Key under which an external network namespace is recorded at dump and handed in at restore. */
    public static final String NETNS_KEY = "extnet";

    /**
     * Where and how to restore. {@code externalMounts} maps key → host path to bind there. With {@code lazyPages} the
     * memory is not copied before the tree runs: a {@link #startLazyPages lazy-pages daemon} serves each page on first
     * touch (userfaultfd) and streams the rest in the background.
     */
    public record RestoreSpec(Path imageDir, Path root, Path pidFile, boolean tcpEstablished, boolean fileLocks,
                              boolean externalUnixSockets, Map<String, String> externalMounts, boolean lazyPages,
                              Duration timeout, Path netns) {
    }

    /** File descriptor the restore command gets the target network namespace on (opened by {@link #LAUNCHER}). */
    static final int NETNS_FD = 3;

    /**
     * CRIU joins a network namespace through an inherited descriptor, and Java closes all but stdio in children: this
     * fixed script (arguments come as an array, never interpolated) joins the given number of cgroup.procs files, so
     * CRIU and all it restores are created in those cgroups, opens the namespace on fd 3, then runs CRIU.
     */
    private static final String LAUNCHER = """
            n=$1; shift
            while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 90; shift; n=$((n-1)); done
            exec 3<"$1" || exit 91; shift
            exec "$@"
            """;

    private static List<String> launcher(List<Path> cgroupProcs, Path netns) {
        List<String> cmd = new ArrayList<>(List.of("sh", "-c", LAUNCHER, "vllmsnap-restore",
                Integer.toString(cgroupProcs.size())));
        cgroupProcs.forEach(p -> cmd.add(p.toString()));
        cmd.add(netns.toString());
        return cmd;
    }

    public static final String LAZY_LOG = "lazy-pages.log";
    private static final String LAZY_SOCKET = "lazy-pages.socket";

    /**
     * Starts {@code criu lazy-pages} for an image, its socket and log in {@code workDir} (the restore must use the
     * same work dir). Returns once the daemon listens. It exits by itself when every page has been transferred.
     */
    public Process startLazyPages(Path imageDir, Path workDir, Duration startTimeout) throws CriuException {
        List<String> cmd = List.of(binary, "lazy-pages", "--images-dir", imageDir.toString(), "--work-dir",
                workDir.toString(), "--log-file", LAZY_LOG, "-v2");
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile())).start();
        } catch (IOException e) {
            throw new CriuException("cannot start criu lazy-pages: " + e.getMessage(), List.of());
        }
        long deadline = System.nanoTime() + startTimeout.toNanos();
        while (!Files.exists(workDir.resolve(LAZY_SOCKET))) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                p.destroyForcibly();
                throw new CriuException("criu lazy-pages did not start", errorLines(workDir.resolve(LAZY_LOG)));
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new CriuException("interrupted starting criu lazy-pages", List.of());
            }
        }
        return p;
    }

    public static final String DUMP_LOG = "dump.log";
    public static final String RESTORE_LOG = "restore.log";

    /** Dumps the process tree rooted at {@code spec.pid()}. The log lands in the image dir as {@value #DUMP_LOG}. */
    public void dump(DumpSpec spec) throws CriuException {
        run("criu dump of process " + spec.pid() + " failed", dumpCommand(spec), Map.of(),
                spec.imageDir().resolve(DUMP_LOG), spec.timeout(), watchDumped(spec.pid()));
    }

    /**
     * A dump whose process dies under it can leave CRIU waiting on its parasite until the timeout (seen when a pod was
     * deleted mid-dump): CRIU is killed a few seconds after the process is gone. A dump without --leave-running
     * kills the tree itself at its end and exits right after, well inside the grace.
     */
    private static ChildProcess.Watch watchDumped(long pid) {
        return new ChildProcess.Watch(() -> ChildProcess.processGone(pid), "the dumped process " + pid,
                DUMPED_GONE_GRACE);
    }

    List<String> dumpCommand(DumpSpec spec) {
        List<String> cmd = new ArrayList<>(List.of(binary, "dump", "--tree", Long.toString(spec.pid()),
                "--images-dir", spec.imageDir().toString(), "--log-file", DUMP_LOG, "-v4"));
        if (spec.leaveRunning()) {
            cmd.add("--leave-running");
        }
        if (spec.tcpEstablished()) {
            cmd.add("--tcp-established");
        }
        if (spec.tcpEstablished() || spec.externalNetns() != null) {
            cmd.addAll(List.of("--network-lock", "nftables")); // iptables-restore is often missing on hosts
        }
        if (spec.externalNetns() != null) {
            cmd.addAll(List.of("--external", "net[" + spec.externalNetns() + "]:" + NETNS_KEY));
        }
        common(cmd, spec.fileLocks(), spec.externalUnixSockets());
        externalMounts(cmd, spec.externalMounts());
        plugins(cmd);
        return cmd;
    }

    /** Restores detached ({@code -d}); the root task's host PID is written to {@code spec.pidFile()}. */
    public void restore(RestoreSpec spec) throws CriuException {
        run("criu restore from " + spec.imageDir() + " failed", restoreCommand(spec), restoreEnv(),
                spec.pidFile().getParent().resolve(RESTORE_LOG), spec.timeout());
    }

    List<String> restoreCommand(RestoreSpec spec) {
        List<String> cmd = new ArrayList<>();
        if (spec.netns() != null) {
            cmd.addAll(launcher(List.of(), spec.netns()));
        }
        cmd.addAll(List.of(binary, "restore", "--images-dir", spec.imageDir().toString(),
                "--log-file", spec.pidFile().getParent().resolve(RESTORE_LOG).toString(), "-v4",
                "--restore-detached", "--root", spec.root().toString(), "--pidfile", spec.pidFile().toString()));
        if (spec.lazyPages()) {
            cmd.addAll(List.of("--lazy-pages", "--work-dir", spec.pidFile().getParent().toString()));
        }
        if (spec.netns() != null) {
            cmd.addAll(List.of("--inherit-fd", "fd[" + NETNS_FD + "]:" + NETNS_KEY));
        }
        if (spec.tcpEstablished()) {
            cmd.add("--tcp-established");
        }
        common(cmd, spec.fileLocks(), spec.externalUnixSockets());
        externalMounts(cmd, spec.externalMounts());
        plugins(cmd);
        return cmd;
    }

    /** Dumps a whole container; the log goes to {@code spec.logFile()}. */
    public void dump(ContainerDump spec) throws CriuException {
        run("criu dump of container init " + spec.initPid() + " failed", dumpCommand(spec), Map.of(), spec.logFile(),
                spec.timeout(), watchDumped(spec.initPid()));
    }

    List<String> dumpCommand(ContainerDump spec) {
        List<String> cmd = new ArrayList<>(List.of(binary, "dump", "--tree", Long.toString(spec.initPid()),
                "--images-dir", spec.imageDir().toString(), "--log-file", spec.logFile().toString(), "-v4",
                "--external", "net[" + spec.netnsInode() + "]:" + ContainerDump.NETNS_KEY,
                // Connections of clients (probes, users) are dumped, and restored closed: the copy has another address.
                "--tcp-established", "--network-lock", "nftables"));
        if (spec.leaveRunning()) {
            cmd.add("--leave-running");
        }
        externalMounts(cmd, spec.externalMounts());
        plugins(cmd);
        return cmd;
    }

    /** Restores a container detached; the restored root's host PID is then in {@code spec.pidFile()}. */
    public void restore(ContainerRestore spec) throws CriuException {
        run("criu restore from " + spec.imageDir() + " failed", restoreCommand(spec), restoreEnv(), spec.logFile(),
                spec.timeout());
    }

    List<String> restoreCommand(ContainerRestore spec) {
        List<String> cmd = launcher(spec.cgroupProcs(), spec.target().net());
        cmd.addAll(List.of(binary, "restore", "--images-dir", spec.imageDir().toString(),
                "--log-file", spec.logFile().toString(), "-v4", "--restore-detached",
                "--pidfile", spec.pidFile().toString(), "--root", spec.root().toString(),
                "--manage-cgroups=ignore", "--tcp-close",
                "--inherit-fd", "fd[" + NETNS_FD + "]:" + spec.netnsKey(),
                "--join-ns", "uts:" + spec.target().uts(),
                "--join-ns", "ipc:" + spec.target().ipc()));
        externalMounts(cmd, spec.externalMounts());
        plugins(cmd);
        return cmd;
    }

    /** {@code --external mnt[A]:B} for each entry: at dump A is the mount point and B its key, at restore the reverse. */
    private static void externalMounts(List<String> cmd, Map<String, String> mounts) {
        mounts.forEach((a, b) -> cmd.addAll(List.of("--external", "mnt[" + a + "]:" + b)));
    }

    private void plugins(List<String> cmd) {
        if (pluginDir != null) {
            cmd.addAll(List.of("--libdir", pluginDir.toString()));
        }
    }

    private static void common(List<String> cmd, boolean fileLocks, boolean externalUnixSockets) {
        if (fileLocks) {
            cmd.add("--file-locks");
        }
        if (externalUnixSockets) {
            cmd.add("--ext-unix-sk");
        }
    }

    /** Environment our CRIU build reads at restore (hack/criu-patches). */
    Map<String, String> restoreEnv() {
        return Map.of(HugePageFill.CRIU_ENV, hugePageFill() ? "1" : "0", ImageMapFill.CRIU_ENV, mapFill() ? "1" : "0");
    }

    private void run(String what, List<String> cmd, Path log, Duration timeout) throws CriuException {
        run(what, cmd, Map.of(), log, timeout);
    }

    private void run(String what, List<String> cmd, Map<String, String> env, Path log, Duration timeout)
            throws CriuException {
        run(what, cmd, env, log, timeout, ChildProcess.Watch.NONE);
    }

    private void run(String what, List<String> cmd, Map<String, String> env, Path log, Duration timeout,
            ChildProcess.Watch watch) throws CriuException {
        ChildProcess.Result r;
        try {
            r = ChildProcess.run(cmd, env, timeout, watch);
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
