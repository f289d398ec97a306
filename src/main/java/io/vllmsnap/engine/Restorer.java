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
 * Brings an image back: prepare (manifest, checks, job slot) → stage (page cache) → criu restore (detached, in new
 * PID and mount namespaces rooted at a bind of the host's root) → GPU restore + unlock in parallel → wake → ready →
 * first token. Latency is measured from the request being accepted to the first token, every moment of it in a
 * named phase. A failed restore kills only what it restored itself.
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
        PhaseTimer timer = PhaseTimer.backToBack(progress); // request accepted → first token, every moment named
        Path image = req.image().toAbsolutePath().normalize();
        Prepared prepared;
        try {
            prepared = timer.time("prepare", "manifest, checks, job slot, work dir", () -> prepare(req, image));
        } catch (Exception e) {
            throw asEngineException(e, image);
        }
        try (JobLimiter.Permit ignored = prepared.permit()) {
            return run(req, image, prepared, timer);
        }
    }

    /** What a restore needs before it touches the image's pages: nothing here starts a process. */
    private record Prepared(Manifest manifest, JobLimiter.Permit permit, VllmClient vllm, Path work) {
    }

    /** Every check before the image is restored; the job slot is given back when one fails. */
    private Prepared prepare(RestoreRequest req, Path image) throws EngineException, IOException {
        Manifest m = Manifest.read(image);
        m.verifyFiles(image);
        JobLimiter.Permit permit = limiter.acquire("image " + image, req.timeouts().queue());
        try {
            checkTarget(req, image, m);
            ensureRootfs(req.rootfs());
            Path work = Files.createTempDirectory("vllmsnap-restore");
            return new Prepared(m, permit, new VllmClient(req.host(), m.source().port(), req.timeouts().http()), work);
        } catch (EngineException | IOException | RuntimeException e) {
            permit.close();
            throw e;
        }
    }

    /** The network namespace, the port and the external mounts the restored tree needs. */
    private static void checkTarget(RestoreRequest req, Path image, Manifest m) throws EngineException {
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
    }

    /**
     * The phases after {@code prepare}, back to back, so they add up to the total (request accepted → first token);
     * only the clean-up after the last phase is outside it.
     */
    private RestoreResult run(RestoreRequest req, Path image, Prepared prepared, PhaseTimer timer) throws EngineException {
        Manifest m = prepared.manifest();
        VllmClient vllm = prepared.vllm();
        Path work = prepared.work();
        long restoredPid = -1;
        Process[] lazyDaemon = new Process[1];
        try {
            long staged = 0;
            if (req.stageReaders() > 0) {
                staged = timer.time("stage", "prefetch " + m.sizeBytes() / (1 << 20) + " MiB",
                        () -> Stager.prefetch(image.resolve(Manifest.CRIU_DIR), req.stageReaders()));
            }
            Path pidFile = work.resolve("restored.pid");
            Path criuImages = image.resolve(Manifest.CRIU_DIR);
            String how = (req.lazyPages() ? "criu restore --lazy-pages" : "criu restore")
                    + (criu.mapFill() ? ", mapped from the image" : "")
                    + (criu.hugePageFill() ? ", huge-page fill" : "");
            restoredPid = timer.time("restore", how, () -> {
                Thread.ofVirtual().name("vllm-client-warm-up").start(vllm::warmUp); // independent of CRIU, beside it
                if (req.lazyPages()) {
                    lazyDaemon[0] = criu.startLazyPages(criuImages, work, Duration.ofSeconds(30));
                }
                criu.restore(new Criu.RestoreSpec(criuImages, req.rootfs(), pidFile,
                        m.source().tcpEstablished(), m.source().fileLocks(), m.source().externalUnixSockets(),
                        m.externalMounts(), req.lazyPages(), req.timeouts().criu(), req.netns()));
                return Long.parseLong(Files.readString(pidFile).strip());
            });
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
            double total = timer.totalSeconds();
            keepCriuLogForDiagnosis(work, restoredPid);
            if (lazyDaemon[0] != null) {
                cleanUpWhenDone(lazyDaemon[0], work, req.timeouts().criu());
            } else {
                Checkpointer.deleteTree(work);
            }
            return new RestoreResult(restoredPid, timer.phases(), total, staged, text);
        } catch (Exception e) {
            if (restoredPid > 0) {
                Processes.kill(restoredPid); // our own half-restored tree, nothing else
            }
            if (lazyDaemon[0] != null) {
                lazyDaemon[0].destroyForcibly();
            }
            throw asEngineException(e, image);
        }
    }

    private static EngineException asEngineException(Exception e, Path image) {
        if (e instanceof EngineException ee) {
            return ee;
        }
        if (e instanceof CriuException ce) {
            return new EngineException(ce.getMessage(), ce);
        }
        return new EngineException("restore of " + image + " failed: " + e, e);
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
