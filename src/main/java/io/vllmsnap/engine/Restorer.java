package io.vllmsnap.engine;

import io.vllmsnap.criu.Criu;
import io.vllmsnap.criu.CriuException;
import io.vllmsnap.criu.MountPoint;
import io.vllmsnap.criu.RootMount;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Brings an image back: stage (page cache) → criu restore (detached, in new PID and mount namespaces rooted at a
 * bind of the host's root) → GPU restore + unlock in parallel → wake → ready → first token. Latency is measured
 * from the request being accepted to the first token. A failed restore kills only what it restored itself.
 */
public final class Restorer {
    private final Criu criu;
    private final GpuCheckpointer gpu;
    private final JobLimiter limiter;

    public Restorer(Criu criu, GpuCheckpointer gpu, JobLimiter limiter) {
        this.criu = criu;
        this.gpu = gpu;
        this.limiter = limiter;
    }

    public RestoreResult restore(RestoreRequest req, Progress progress) throws EngineException {
        PhaseTimer timer = new PhaseTimer(progress);
        Path image = req.image().toAbsolutePath().normalize();
        Manifest m = Manifest.read(image);
        m.verifyFiles(image);
        try (JobLimiter.Permit ignored = limiter.acquire("image " + image, req.timeouts().queue())) {
            return run(req, image, m, timer);
        }
    }

    private RestoreResult run(RestoreRequest req, Path image, Manifest m, PhaseTimer timer) throws EngineException {
        int port = m.source().port();
        if (m.externalNetwork() != null && req.netns() == null) {
            throw new EngineException(image + " was taken in its own network namespace: give the network namespace to"
                    + " restore into (a placeholder's /proc/<pid>/ns/net)");
        }
        if (m.externalNetwork() == null && req.netns() != null) {
            throw new EngineException(image + " was taken in the host's network namespace and cannot be restored into "
                    + req.netns());
        }
        if (req.netns() != null && !Files.exists(req.netns())) {
            throw new EngineException("network namespace " + req.netns() + " does not exist");
        }
        if (portInUse(req.host(), port)) {
            throw new EngineException("port " + port + " is in use: the source (or another restore) still serves on"
                    + " it; stop it first, or restore into its own network namespace");
        }
        for (String mountPoint : m.externalMounts().values()) {
            if (!Files.exists(Path.of(mountPoint))) {
                throw new EngineException("the source had " + mountPoint + " mounted and this host has no such path;"
                        + " the restored tree would need it");
            }
        }
        VllmClient vllm = new VllmClient(req.host(), port, req.timeouts().http());
        long restoredPid = -1;
        Path work = null;
        Process lazyDaemon = null;
        try {
            long staged = 0;
            if (req.stageReaders() > 0) {
                staged = timer.time("stage", "prefetch " + m.sizeBytes() / (1 << 20) + " MiB",
                        () -> Stager.prefetch(image.resolve(Manifest.CRIU_DIR), req.stageReaders()));
            }
            ensureRootfs(req.rootfs());
            work = Files.createTempDirectory("vllmsnap-restore");
            Path pidFile = work.resolve("restored.pid");
            Path criuImages = image.resolve(Manifest.CRIU_DIR);
            if (req.lazyPages()) {
                lazyDaemon = criu.startLazyPages(criuImages, work, Duration.ofSeconds(30));
            }
            timer.time("restore", (req.lazyPages() ? "criu restore --lazy-pages" : "criu restore")
                            + (criu.hugePageFill() ? ", huge-page fill" : ""),
                    () -> criu.restore(new Criu.RestoreSpec(criuImages, req.rootfs(), pidFile,
                            m.source().tcpEstablished(), m.source().fileLocks(), m.source().externalUnixSockets(),
                            m.externalMounts(), req.lazyPages(), req.timeouts().criu(), req.netns())));
            restoredPid = Long.parseLong(Files.readString(pidFile).strip());
            long root = restoredPid;
            if (m.cudaProcesses() > 0) {
                timer.time("gpu-restore", m.cudaProcesses() + " CUDA process(es)", () -> {
                    List<Long> cuda = Processes.tree(root).stream().filter(gpu::isCudaProcess).toList();
                    if (cuda.size() != m.cudaProcesses()) {
                        throw new EngineException("restored tree has " + cuda.size() + " CUDA processes, the image "
                                + m.cudaProcesses());
                    }
                    GpuSteps.parallel("restore", cuda, gpu::restore);
                    GpuSteps.parallel("unlock", cuda, gpu::unlock);
                });
            }
            if (m.source().sleepLevel() > 0) {
                timer.time("wake", "wake_up (sleep level " + m.source().sleepLevel() + ")", vllm::wakeUp);
            }
            timer.time("ready", "/health", () -> vllm.awaitHealthy(req.timeouts().ready()));
            String text = null;
            if (req.firstToken()) {
                text = timer.time("first-token", "/v1/completions max_tokens=1",
                        () -> vllm.complete(VllmClient.FIRST_TOKEN_PROMPT, 1).path("choices").path(0).path("text").asText());
            }
            keepCriuLogForDiagnosis(work, restoredPid);
            if (lazyDaemon != null) {
                cleanUpWhenDone(lazyDaemon, work, req.timeouts().criu());
            } else {
                Checkpointer.deleteTree(work);
            }
            return new RestoreResult(restoredPid, timer.phases(), timer.totalSeconds(), staged, text);
        } catch (Exception e) {
            if (restoredPid > 0) {
                Processes.kill(restoredPid); // our own half-restored tree, nothing else
            }
            if (lazyDaemon != null) {
                lazyDaemon.destroyForcibly();
            }
            if (e instanceof EngineException ee) {
                throw ee;
            }
            if (e instanceof CriuException ce) {
                throw new EngineException(ce.getMessage(), ce);
            }
            throw new EngineException("restore of " + image + " failed: " + e, e);
        }
    }

    /**
     * The lazy-pages daemon exits once every page reached the restored tree; its work dir goes then. A daemon still
     * running after {@code limit} is left alone (killing it would kill the restored server at its next fault).
     */
    private static void cleanUpWhenDone(Process daemon, Path work, Duration limit) {
        Thread.ofVirtual().name("lazy-pages-" + daemon.pid()).start(() -> {
            try {
                if (daemon.waitFor(limit.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
                        && daemon.exitValue() == 0) {
                    Checkpointer.deleteTree(work);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    /**
     * With {@value #KEEP_LOGS_ENV} naming a directory, a successful restore's CRIU log (timestamped, -v4) is copied
     * there as restore-PID.log: the benchmark reads where CRIU's own time goes. Failed restores report their log
     * anyway.
     */
    static final String KEEP_LOGS_ENV = "VLLMSNAP_KEEP_CRIU_LOGS";

    private static void keepCriuLogForDiagnosis(Path work, long pid) {
        String dir = System.getenv(KEEP_LOGS_ENV);
        if (dir == null || dir.isBlank()) {
            return;
        }
        try {
            Files.createDirectories(Path.of(dir));
            Files.copy(work.resolve(Criu.RESTORE_LOG), Path.of(dir, "restore-" + pid + ".log"),
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            System.err.println("cannot keep the CRIU log in " + dir + ": " + e.getMessage());
        }
    }

    /** CRIU's --root must be a mount point: a (non-recursive) bind of the host's root, made once and kept. */
    static void ensureRootfs(Path rootfs) throws EngineException {
        try {
            boolean mounted = MountPoint.of(ProcessHandle.current().pid()).stream()
                    .anyMatch(mp -> mp.mountPoint().equals(rootfs.toString()));
            if (mounted) {
                return;
            }
            Files.createDirectories(rootfs);
            RootMount.bind(Path.of("/"), rootfs);
        } catch (IOException | CriuException e) {
            throw new EngineException("cannot prepare " + rootfs + ": " + e.getMessage(), e);
        }
    }

    private static boolean portInUse(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
