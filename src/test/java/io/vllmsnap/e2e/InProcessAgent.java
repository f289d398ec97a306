package io.vllmsnap.e2e;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vllmsnap.agent.InvalidIdException;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.ImageInfo;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.container.CriuContainerCheckpointer;
import io.vllmsnap.agent.container.EmulatedNode;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.jobs.AgentMetrics;
import io.vllmsnap.agent.jobs.JobRunner;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;

/**
 * The node agent of one emulated node, in process: the agent's real job machinery (JobRunner, ImageStore, JobStore,
 * container discovery, the CRIU container checkpointer) on node storage of its own, behind the {@link NodeAgent}
 * contract the operator uses. It stands in for the HTTPS hop only (the HTTPS client and server have tests of their
 * own). It can be made unreachable, and killed (its CRIU children with it) and started again on the same storage, as
 * a restarted agent pod would be.
 */
final class InProcessAgent implements NodeAgent {
    private final String node;
    private final Path storage;
    private final Path images;
    private final int concurrency;
    /** The agent's own meters (a fresh set per agent start, as in a new agent process). */
    private volatile SimpleMeterRegistry registry;
    private volatile JobRunner runner;
    private volatile CriuContainerCheckpointer checkpointer;
    private volatile boolean down;
    /** Job IDs asked for (a repeated request for the same job counts once). */
    final java.util.Set<String> snapshotJobs = java.util.concurrent.ConcurrentHashMap.newKeySet();
    final java.util.Set<String> restoreJobs = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Every call fails as if the agent's address did not answer. */
    volatile boolean unreachable;

    /**
     * @param images where images live: node storage, or a shared directory standing for a PVC both nodes mount
     */
    InProcessAgent(String node, Path storage, Path images, int concurrency) throws IOException {
        this.node = node;
        this.storage = Files.createDirectories(storage);
        this.images = Files.createDirectories(images);
        this.concurrency = concurrency;
        start();
    }

    synchronized void start() throws IOException {
        registry = new SimpleMeterRegistry();
        checkpointer = new CriuContainerCheckpointer("criu", EmulatedNode.CGROUP_ROOT, Duration.ofMinutes(2), Duration.ofSeconds(60));
        JobRunner fresh = new JobRunner(new JobStore(storage.resolve("jobs")), new ImageStore(images),
                new ContainerDiscovery(EmulatedNode.CGROUP_ROOT, Path.of("/proc")), checkpointer,
                new AgentMetrics(registry), storage.resolve("work"), concurrency, Clock.systemUTC());
        fresh.recover();
        runner = fresh;
        down = false;
    }

    /** Kills the agent as the kubelet kills its pod: its CRIU processes die with it, its threads stop. */
    synchronized void kill() {
        down = true;
        killCriuProcesses();
        runner.close();
    }

    /** The agent's job queue depth gauge as the agent exports it. */
    double queueDepth() {
        Gauge gauge = registry.find("vllmsnap.agent.queue.depth").gauge();
        return gauge == null ? Double.NaN : gauge.value();
    }

    ImageStore imageStore() {
        return new ImageStore(images);
    }

    @Override
    public NodeCapabilities capabilities() {
        reach();
        CompatibilityIdentity identity = checkpointer.nodeIdentity();
        return new NodeCapabilities(node, "e2e", identity.criuVersion(), identity.driverVersion(), checkpointer.gpus(), false,
                false, imageStore().freeBytes(), concurrency, runner.queueDepth());
    }

    @Override
    public JobStatus startSnapshot(SnapshotJobRequest request) {
        reach();
        try {
            JobStatus status = runner.submitSnapshot(request);
            snapshotJobs.add(request.jobId());
            return status;
        } catch (InvalidIdException e) {
            throw new AgentRejectedException("InvalidRequest", e.getMessage());
        }
    }

    @Override
    public JobStatus startRestore(RestoreJobRequest request) {
        reach();
        try {
            JobStatus status = runner.submitRestore(request);
            restoreJobs.add(request.jobId());
            return status;
        } catch (InvalidIdException e) {
            throw new AgentRejectedException("InvalidRequest", e.getMessage());
        }
    }

    @Override
    public JobStatus job(String jobId) {
        reach();
        return runner.status(jobId);
    }

    @Override
    public List<ImageInfo> images(String namespace) {
        reach();
        return imageStore().list(namespace);
    }

    @Override
    public void deleteImage(String namespace, String imageId) {
        reach();
        try {
            runner.deleteImage(namespace, imageId);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void reach() {
        if (down || unreachable) {
            throw new AgentUnavailableException("agent on node '" + node + "' does not answer (e2e: " + (down ? "killed" : "unreachable") + ")");
        }
    }

    /** CRIU processes this JVM started (the agents' children): the ones an agent's pod would take down with it. */
    static List<ProcessHandle> criuProcesses() {
        return ProcessHandle.current().descendants()
                .filter(p -> p.info().command().map(c -> c.endsWith("/criu") || c.equals("criu")).orElse(false))
                .toList();
    }

    private static void killCriuProcesses() {
        for (ProcessHandle criu : criuProcesses()) {
            criu.destroyForcibly();
        }
    }

    static boolean criuRuns(String verb) {
        return criuProcesses().stream().anyMatch(p -> {
            try {
                String cmdline = new String(Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")));
                return cmdline.contains("criu\0" + verb);
            } catch (IOException gone) {
                return false;
            }
        });
    }
}
