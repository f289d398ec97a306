package io.vllmsnap.agent.container;

import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.DiscoveredContainer;
import io.vllmsnap.agent.jobs.ContainerCheckpointer;
import io.vllmsnap.agent.jobs.JobFailedException;
import io.vllmsnap.agent.store.Json;
import io.vllmsnap.criu.ContainerDump;
import io.vllmsnap.criu.ContainerRestore;
import io.vllmsnap.criu.Criu;
import io.vllmsnap.criu.CriuException;
import io.vllmsnap.criu.MountPoint;
import io.vllmsnap.criu.RootMount;
import io.vllmsnap.engine.EngineException;
import io.vllmsnap.engine.GpuCheckpointer;
import io.vllmsnap.engine.VllmClient;
import io.vllmsnap.engine.NoGpuCheckpointer;
import io.vllmsnap.engine.Processes;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Snapshot and restore of whole containers with CRIU, as a container runtime would do it, but into a placeholder
 * container of another pod:
 * <ul>
 *   <li>dump: the container's init (PID 1 of its PID namespace) and its tree, with its mount namespace; every mount
 *       but its root and /proc is declared external (volumes, /etc/hosts, /dev/shm, /dev/nvidia*, driver files: CRIU
 *       refuses to dump bind mounts of host paths), and so is its network namespace, which belongs to the pod;</li>
 *   <li>restore: in a new PID and mount namespace made by CRIU, rooted at the placeholder's root file system, inside
 *       the placeholder's network namespace (passed as an inherited descriptor), joining its IPC and UTS namespaces;
 *       CRIU itself is started inside the placeholder's cgroups so the restored tree is created there and accounted
 *       and killed with the placeholder.</li>
 * </ul>
 */
public class CriuContainerCheckpointer implements ContainerCheckpointer {

    private final Criu criu;
    private final Path cgroupRoot;
    private final Duration criuTimeout;
    private final Duration readyTimeout;
    private final ContainerGpu gpu;
    private volatile String criuVersion;

    public CriuContainerCheckpointer(String criuBinary, Path cgroupRoot, Duration criuTimeout, Duration readyTimeout) {
        this(criuBinary, cgroupRoot, criuTimeout, readyTimeout, new NoGpuCheckpointer());
    }

    /** @param gpu the driver's checkpoint API (FFM binding on GPU nodes, {@link NoGpuCheckpointer} elsewhere) */
    public CriuContainerCheckpointer(String criuBinary, Path cgroupRoot, Duration criuTimeout, Duration readyTimeout,
            GpuCheckpointer gpu) {
        this.gpu = new ContainerGpu(gpu, Duration.ofSeconds(30));
        this.criu = new Criu(criuBinary);
        this.cgroupRoot = cgroupRoot;
        this.criuTimeout = criuTimeout;
        this.readyTimeout = readyTimeout;
    }

    @Override
    public SnapshotOutcome snapshot(DiscoveredContainer source, SnapshotJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception {
        Map<String, String> external = MountPoint.externalMounts(source.initPid());
        long netInode = source.namespaces().get("net");
        Path criuDir = Files.createDirectories(imageDir.resolve(ContainerImageLayout.CRIU_DIR));
        ContainerDump dump = new ContainerDump(source.initPid(), criuDir, workDir.resolve(Criu.DUMP_LOG), netInode,
                external, request.leaveRunning(), criuTimeout);
        Map<String, String> keyToMount = new LinkedHashMap<>();
        external.forEach((mountPoint, key) -> keyToMount.put(key, mountPoint));
        // the tree CRIU dumps: the container's init and its descendants
        List<Long> cuda = gpu.cudaProcesses(Processes.tree(source.initPid()));
        gpu.checkSupported(cuda);
        // vLLM is asked to sleep at the pod's address: the agent does not enter the pod's network namespace
        VllmClient vllm = request.sleepLevel() > 0
                ? new VllmClient(PodAddress.of(source.initPid()), request.vllmPort(), Duration.ofSeconds(60)) : null;
        boolean slept = false;
        boolean locked = false;
        try {
            if (vllm != null) {
                timed(phases, "prepare", () -> vllm(() -> vllm.sleep(request.sleepLevel()), "VllmSleepFailed"));
                slept = true;
            }
            if (!cuda.isEmpty()) {
                locked = true;
                timed(phases, "gpu-checkpoint", () -> gpu.lockAndCheckpoint(cuda));
            }
            timed(phases, "criu-dump", () -> {
                try {
                    criu.dump(dump);
                } catch (CriuException e) {
                    throw storageFull(imageDir) ? new JobFailedException("NoSpaceLeft", "image storage is full: " + e.getMessage(), e)
                            : criuFailed("CriuDumpFailed", e);
                }
            });
        } catch (Exception e) {
            if (locked) {
                gpu.giveBack(cuda); // the source keeps serving
            }
            if (slept) {
                wakeQuietly(vllm);
            }
            throw e;
        }
        if (request.leaveRunning() && (!cuda.isEmpty() || slept)) {
            boolean wake = slept;
            timed(phases, "resume-source", () -> {
                gpu.restoreAndUnlock(cuda);
                if (wake) {
                    vllm(vllm::wakeUp, "VllmWakeFailed");
                }
            });
        }
        Json.writeAtomically(imageDir.resolve(ContainerImageLayout.FILE_NAME),
                new ContainerImageLayout(keyToMount, ContainerDump.NETNS_KEY, request.vllmPort(), cuda.size(), request.sleepLevel()));
        return new SnapshotOutcome(nodeIdentity(), gpuNames());
    }

    @Override
    public RestoreOutcome restore(DiscoveredContainer placeholder, RestoreJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception {
        ContainerImageLayout layout = Json.read(imageDir.resolve(ContainerImageLayout.FILE_NAME), ContainerImageLayout.class);
        Path placeholderRoot = placeholder.root();
        Map<String, String> externalSources = externalSources(placeholder, layout, workDir.toAbsolutePath().getParent());
        Path root = Files.createDirectories(workDir.resolve("root"));
        // The placeholder pod mounts the same volumes, devices and driver files at the same places.
        ContainerRestore spec = new ContainerRestore(imageDir.resolve(ContainerImageLayout.CRIU_DIR), workDir, root,
                new ContainerRestore.TargetNamespaces(placeholder.namespaceFile("net"), placeholder.namespaceFile("uts"),
                        placeholder.namespaceFile("ipc")),
                cgroupProcsFiles(placeholder.cgroup()), layout.netKey(), externalSources, criuTimeout);
        timed(phases, "criu-restore", () -> {
            // A bind of the placeholder's root file system, private to this job (inside the phase: the restore's
            // latency is all named).
            mountStep("RootBindFailed", () -> RootMount.bind(placeholderRoot, root));
            try {
                criu.restore(spec);
            } catch (CriuException e) {
                throw criuFailed("CriuRestoreFailed", e);
            } finally {
                mountStep("RootUnmountFailed", () -> RootMount.detach(root));
            }
        });
        long restored = Long.parseLong(Files.readString(spec.pidFile()).strip());
        try {
            if (layout.cudaProcesses() > 0) {
                timed(phases, "gpu-restore", () -> {
                    List<Long> cuda = gpu.cudaProcesses(Processes.tree(restored));
                    if (cuda.size() != layout.cudaProcesses()) {
                        throw new JobFailedException("GpuRestoreFailed", "the restored tree has " + cuda.size()
                                + " CUDA processes, the image " + layout.cudaProcesses());
                    }
                    gpu.restoreAndUnlock(cuda);
                });
            }
            VllmClient vllm = new VllmClient(PodAddress.of(placeholder.initPid()), layout.vllmPort(), Duration.ofSeconds(60));
            if (layout.sleepLevel() > 0) {
                timed(phases, "wake", () -> vllm(vllm::wakeUp, "VllmWakeFailed"));
            }
            timed(phases, "ready", () -> {
                long deadline = System.nanoTime() + readyTimeout.toNanos(); // one limit for both waits
                awaitListening(restored, layout.vllmPort()); // cheap: no HTTP until the socket is there
                Duration left = Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
                vllm(() -> vllm.awaitHealthy(left), "RestoredServerNotHealthy");
            });
            // The promise is "request accepted → first token": the restore ends with one generated token.
            timed(phases, "first-token", () -> vllm(() -> vllm.complete(VllmClient.FIRST_TOKEN_PROMPT, 1), "FirstTokenFailed"));
        } catch (Exception e) {
            ProcessHandle.of(restored).ifPresent(ProcessHandle::destroyForcibly); // our own half-restored tree only
            throw e;
        }
        return new RestoreOutcome(gpuNames());
    }

    /** A restore cut short may have left the placeholder's root bound into the work directory: detach it. */
    @Override
    public void cleanUp(Path workDir) {
        Path root = workDir.resolve("root").toAbsolutePath().normalize();
        try {
            if (MountTable.read(Path.of("/proc/self/mountinfo")).at(root.toString()).isPresent()) {
                mountStep("RootUnmountFailed", () -> RootMount.detach(root));
            }
        } catch (IOException | JobFailedException e) {
            org.jboss.logging.Logger.getLogger(CriuContainerCheckpointer.class).warnf("cannot unmount %s: %s", root, e.getMessage());
        }
    }

    @Override
    public CompatibilityIdentity nodeIdentity() {
        String version = criuVersion;
        if (version == null) {
            try {
                version = criu.version();
                criuVersion = version;
            } catch (CriuException e) {
                version = null;
            }
        }
        List<GpuCheckpointer.GpuInfo> gpus = gpu.gpus();
        String model = gpus.isEmpty() ? null : gpus.getFirst().name();
        String driver = gpus.isEmpty() ? null : gpus.getFirst().driverVersion();
        return new CompatibilityIdentity(model, driver, version, null, List.of());
    }

    /** GPUs of this node as {@code model/uuid}. */
    private List<String> gpuNames() {
        return gpu.gpus().stream().map(g -> g.name() + "/" + g.uuid()).toList();
    }

    @Override
    public List<io.vllmsnap.agent.api.NodeCapabilities.GpuInfo> gpus() {
        return gpu.gpus().stream().map(g -> new io.vllmsnap.agent.api.NodeCapabilities.GpuInfo(g.uuid(), g.name(), 0)).toList();
    }

    /**
     * For each external mount of the image, the directory to bind there: what the placeholder has mounted at that
     * mount point, as a path in the agent's own mount namespace (CRIU cannot clone a mount of another namespace).
     * Found by device and file-system root in the agent's mount table; a mount that exists only inside the
     * placeholder falls back to its path through /proc/PID/root.
     */
    private Map<String, String> externalSources(DiscoveredContainer placeholder, ContainerImageLayout layout, Path workRoot)
            throws IOException {
        MountTable inPlaceholder = MountTable.read(placeholder.procDir().resolve("mountinfo"));
        // Other jobs' binds of their placeholders' roots live under the work root and go when those jobs end: never
        // take a mount's source from there (restores running side by side failed with "open_tree ... No such file").
        MountTable ours = MountTable.read(Path.of("/proc/self/mountinfo")).without(workRoot.toString());
        Map<String, String> sources = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : layout.externalMounts().entrySet()) {
            String mountPoint = e.getValue();
            var mount = inPlaceholder.at(mountPoint).orElseThrow(() -> new JobFailedException("PlaceholderMountMissing",
                    "the placeholder container has nothing mounted at " + mountPoint + ", which the snapshot's container had"));
            sources.put(e.getKey(), ours.pathOf(mount).orElse(placeholder.root() + mountPoint));
        }
        return sources;
    }

    /**
     * The placeholder's cgroup.procs files: its cgroup2 (or v1 systemd) directory, plus the same relative path under
     * each cgroup v1 controller hierarchy where one exists (hybrid nodes account memory and CPU there).
     */
    List<Path> cgroupProcsFiles(Path placeholderCgroup) throws IOException {
        List<Path> files = new ArrayList<>();
        files.add(placeholderCgroup.resolve("cgroup.procs"));
        Path relative = null;
        try (var hierarchies = Files.list(cgroupRoot)) {
            for (Path hierarchy : hierarchies.filter(Files::isDirectory).toList()) {
                if (placeholderCgroup.startsWith(hierarchy)) {
                    relative = hierarchy.relativize(placeholderCgroup);
                }
            }
        }
        if (relative != null) {
            try (var hierarchies = Files.list(cgroupRoot)) {
                for (Path hierarchy : hierarchies.filter(Files::isDirectory).sorted().toList()) {
                    Path procs = hierarchy.resolve(relative).resolve("cgroup.procs");
                    if (!placeholderCgroup.startsWith(hierarchy) && Files.isRegularFile(procs)) {
                        files.add(procs);
                    }
                }
            }
        }
        return files;
    }

    /** The restored server is up when a socket of its tree listens on the port (read from its netns's /proc). */
    private void awaitListening(long pid, int port) throws InterruptedException {
        String hexPort = String.format(":%04X ", port);
        long deadline = System.nanoTime() + readyTimeout.toNanos();
        while (System.nanoTime() < deadline) {
            for (String table : List.of("tcp", "tcp6")) {
                try {
                    for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "net", table))) {
                        String[] f = line.trim().split("\\s+");
                        // local_address is field 1 (ADDR:PORT), state field 3: 0A = LISTEN
                        if (f.length > 3 && (f[1] + " ").endsWith(hexPort) && f[3].equals("0A")) {
                            return;
                        }
                    }
                } catch (IOException e) {
                    throw new JobFailedException("RestoredProcessExited", "the restored server (pid " + pid + ") is gone");
                }
            }
            Thread.sleep(20);
        }
        throw new JobFailedException("RestoredServerNotListening", "the restored server does not listen on port " + port
                + " within " + readyTimeout.toSeconds() + " s");
    }

    /** A CRIU failure as a job failure; a full disk (seen in CRIU's errors) gets a reason of its own. */
    private static JobFailedException criuFailed(String reason, CriuException e) {
        String why = e.getMessage().contains("No space left on device") ? "NoSpaceLeft" : reason;
        return new JobFailedException(why, e.getMessage(), e);
    }

    private static void mountStep(String reason, MountStep step) {
        try {
            step.run();
        } catch (CriuException e) {
            throw new JobFailedException(reason, e.getMessage(), e);
        }
    }

    @FunctionalInterface
    private interface MountStep {
        void run() throws CriuException;
    }

    /** A full disk may also cut CRIU's own log short (it lives on the same storage), so ask the file system too. */
    private static boolean storageFull(Path dir) {
        try {
            return Files.getFileStore(dir).getUsableSpace() < 1 << 20;
        } catch (IOException e) {
            return false;
        }
    }

    private static void vllm(VllmCall call, String reason) {
        try {
            call.run();
        } catch (EngineException e) {
            throw new JobFailedException(reason, e.getMessage(), e);
        }
    }

    private static void wakeQuietly(VllmClient vllm) {
        try {
            vllm.wakeUp();
        } catch (EngineException | RuntimeException ignored) {
            // best effort after a failure; the failure itself is what the caller needs to see
        }
    }

    @FunctionalInterface
    private interface VllmCall {
        void run() throws EngineException;
    }

    private static void timed(PhaseListener phases, String phase, ThrowingRunnable body) throws Exception {
        phases.started(phase);
        long start = System.nanoTime();
        body.run();
        phases.finished(phase, (System.nanoTime() - start) / 1_000_000);
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }
}
