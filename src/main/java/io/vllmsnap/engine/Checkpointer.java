package io.vllmsnap.engine;

import io.vllmsnap.criu.Criu;
import io.vllmsnap.criu.CriuException;
import io.vllmsnap.criu.ImageMapFill;
import io.vllmsnap.criu.MountPoint;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Takes a snapshot of a process tree: prepare (vLLM sleep) → GPU lock + checkpoint → criu dump into a temporary
 * directory → manifest, fsync, atomic rename. Each phase is timed. A failure after the GPU lock gives the GPU state
 * back and unlocks, and a server put to sleep is woken, so the source keeps serving; the temporary directory is
 * removed, so no partial image is ever visible under the requested name.
 */
public final class Checkpointer {
    private final Criu criu;
    private final GpuCheckpointer gpu;
    private final JobLimiter limiter;

    public Checkpointer(Criu criu, GpuCheckpointer gpu, JobLimiter limiter) {
        this.criu = criu;
        this.gpu = gpu;
        this.limiter = limiter;
    }

    public Manifest snapshot(SnapshotRequest req, Progress progress) throws EngineException {
        validate(req);
        try (JobLimiter.Permit ignored = limiter.acquire("process " + req.pid(), req.timeouts().queue())) {
            return run(req, progress);
        }
    }

    private static void validate(SnapshotRequest req) throws EngineException {
        if (req.sleepLevel() < 0 || req.sleepLevel() > 2) {
            throw new EngineException("sleep level must be 0, 1 or 2, was " + req.sleepLevel());
        }
        if (!Processes.alive(req.pid())) {
            throw new EngineException("process " + req.pid() + " does not exist");
        }
        try {
            if (!Processes.isNamespaceInit(req.pid())) {
                throw new EngineException("process " + req.pid() + " is not PID 1 of its own PID namespace; start it as"
                        + " a container would (vllmsnap run, or unshare --pid --fork --mount --mount-proc setsid ...)");
            }
        } catch (IOException e) {
            throw new EngineException("cannot read /proc/" + req.pid() + "/status: " + e.getMessage(), e);
        }
        if (Files.exists(req.out())) {
            throw new EngineException(req.out() + " already exists; snapshots never overwrite an image");
        }
    }

    private Manifest run(SnapshotRequest req, Progress progress) throws EngineException {
        PhaseTimer timer = new PhaseTimer(progress);
        VllmClient vllm = new VllmClient(req.host(), req.port(), req.timeouts().http());
        Path out = req.out().toAbsolutePath();
        Path tmp = out.resolveSibling("." + out.getFileName() + ".partial-" + UUID.randomUUID().toString().substring(0, 8));
        List<Long> cuda = List.of();
        List<Long> locked = new ArrayList<>();
        boolean slept = false;
        boolean dumped = false;
        try {
            Files.createDirectories(tmp.resolve(Manifest.CRIU_DIR));
            String criuVersion = criu.version();
            String command = Processes.commandLine(req.pid());
            List<Long> tree = Processes.tree(req.pid());
            refuseImageMappings(tree);
            cuda = tree.stream().filter(gpu::isCudaProcess).toList();
            for (long pid : cuda) {
                gpu.checkSupported(pid);
            }
            if (req.sleepLevel() > 0) {
                timer.time("prepare", "sleep level " + req.sleepLevel(), () -> vllm.sleep(req.sleepLevel()));
                slept = true;
            }
            List<Long> cudaPids = cuda;
            if (!cuda.isEmpty()) {
                timer.time("gpu-checkpoint", cuda.size() + " CUDA process(es)", () -> {
                    GpuSteps.parallel("lock", cudaPids, pid -> {
                        gpu.lock(pid, req.timeouts().gpuLock());
                        synchronized (locked) {
                            locked.add(pid);
                        }
                    });
                    GpuSteps.parallel("checkpoint", cudaPids, gpu::checkpoint);
                });
            }
            Map<String, String> external = MountPoint.externalMounts(req.pid());
            String ownNetns = Processes.ownNetworkNamespace(req.pid());
            timer.time("dump", "criu dump of " + tree.size() + " process(es)", () -> criu.dump(new Criu.DumpSpec(
                    req.pid(), tmp.resolve(Manifest.CRIU_DIR), req.leaveRunning(), req.tcpEstablished(),
                    req.fileLocks(), req.externalUnixSockets(), external, req.timeouts().criu(), ownNetns)));
            dumped = true;
            if (req.leaveRunning()) {
                boolean wake = slept;
                timer.time("resume-source", "source keeps serving", () -> {
                    GpuSteps.parallel("restore", locked, gpu::restore);
                    GpuSteps.parallel("unlock", locked, gpu::unlock);
                    locked.clear();
                    if (wake) {
                        vllm.wakeUp();
                    }
                });
            } else {
                locked.clear();
            }
            Map<String, Long> files = timer.time("finalize", "fsync + manifest + rename", () -> syncFiles(tmp));
            long size = files.values().stream().mapToLong(Long::longValue).sum();
            Manifest m = new Manifest(Manifest.FORMAT_VERSION, Instant.now().toString(),
                    new Manifest.Source(req.pid(), command, hostname(), req.port(), req.sleepLevel(),
                            req.leaveRunning(), req.tcpEstablished(), req.fileLocks(), req.externalUnixSockets()),
                    criuVersion, gpu.gpus(), cuda.size(), size, files, invert(external), timer.phases(),
                    timer.totalSeconds(), ownNetns == null ? null : Criu.NETNS_KEY);
            m.writeTo(tmp);
            syncDir(tmp);
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            syncDir(out.getParent());
            return m;
        } catch (Exception e) {
            giveBackSource(locked, slept && (!dumped || req.leaveRunning()), vllm, req.pid());
            String kept = keepDumpLog(tmp, out);
            deleteTree(tmp);
            if (e instanceof EngineException ee) {
                throw ee;
            }
            if (e instanceof CriuException ce) {
                throw new EngineException(ce.getMessage() + kept, ce);
            }
            if (e instanceof GpuCheckpointException ge) {
                throw new EngineException("GPU checkpoint of process tree " + req.pid() + " refused or failed: "
                        + ge.getMessage(), ge);
            }
            throw new EngineException("snapshot of process " + req.pid() + " failed: " + e, e);
        }
    }

    /**
     * A process restored with map fill reads part of its memory from another snapshot's pages file: a dump of it would
     * record that file by path and could only be restored where it still exists, unchanged. Refused before anything
     * touches the process.
     */
    private static void refuseImageMappings(List<Long> tree) throws EngineException, IOException {
        for (long pid : tree) {
            Optional<String> file = ImageMapFill.mappedImageFile(pid);
            if (file.isPresent()) {
                throw new EngineException("process " + pid + " maps snapshot image file " + file.get() + ": it was "
                        + "restored with map fill (" + ImageMapFill.SETTING_ENV + "=on) and part of its memory still "
                        + "reads from that file, so a snapshot of it would depend on another snapshot. Snapshot the "
                        + "source process, or a replica restored with " + ImageMapFill.SETTING_ENV + "=off");
            }
        }
    }

    /** The partial directory goes, CRIU's log of the failed dump stays next to where the image would have been. */
    private static String keepDumpLog(Path tmp, Path out) {
        Path log = tmp.resolve(Manifest.CRIU_DIR).resolve(Criu.DUMP_LOG);
        Path kept = out.resolveSibling(out.getFileName() + ".failed-dump.log");
        try {
            if (Files.exists(log)) {
                Files.move(log, kept, StandardCopyOption.REPLACE_EXISTING);
                return "\n(CRIU log kept at " + kept + ")";
            }
        } catch (IOException ignored) {
            // the error lines are in the message already
        }
        return "";
    }

    /** After a failure: the GPU state goes back, the process is unlocked and woken, so it keeps serving. */
    private void giveBackSource(List<Long> locked, boolean wake, VllmClient vllm, long pid) {
        try {
            GpuSteps.parallel("restore", locked, gpu::restore);
            GpuSteps.parallel("unlock", locked, gpu::unlock);
        } catch (EngineException ignored) {
            // best effort; the original failure is what the caller needs to see
        }
        if (wake && Processes.alive(pid)) {
            try {
                vllm.wakeUp();
            } catch (EngineException ignored) {
                // best effort, as above
            }
        }
    }

    private static Map<String, String> invert(Map<String, String> mountToKey) {
        Map<String, String> keyToMount = new TreeMap<>();
        mountToKey.forEach((mp, key) -> keyToMount.put(key, mp));
        return keyToMount;
    }

    private static Map<String, Long> syncFiles(Path dir) throws IOException {
        Map<String, Long> files = new TreeMap<>();
        Path criuDir = dir.resolve(Manifest.CRIU_DIR);
        try (Stream<Path> s = Files.list(criuDir)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
                files.put(f.getFileName().toString(), Files.size(f));
            }
        }
        syncDir(criuDir);
        return files;
    }

    static void syncDir(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // what is left has a .partial name and is never read as an image
        }
    }

    private static String hostname() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
