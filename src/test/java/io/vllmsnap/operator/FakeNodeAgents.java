package io.vllmsnap.operator;

import io.quarkus.test.Mock;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.ImageInfo;
import io.vllmsnap.agent.api.JobKind;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Test double of the node agents: one in-memory agent per node name, whose jobs the tests drive by hand (or let finish
 * on the first poll). It keeps the agent contract: job IDs are idempotent, unknown jobs answer null, an unreachable
 * agent throws {@link AgentUnavailableException}.
 */
@Mock
@ApplicationScoped
public class FakeNodeAgents implements NodeAgents {
    private final Map<String, FakeAgent> agents = new ConcurrentHashMap<>();

    @Override
    public Optional<NodeAgent> forNode(String nodeName) {
        return Optional.ofNullable(nodeName).map(agents::get);
    }

    /** Puts an agent on {@code node} (or returns the one there). */
    public FakeAgent on(String node) {
        return agents.computeIfAbsent(node, FakeAgent::new);
    }

    public static final class FakeAgent implements NodeAgent {
        public static final CompatibilityIdentity IDENTITY =
                new CompatibilityIdentity("NVIDIA H100 80GB HBM3", "580.65.06", "4.2.1", null, List.of());

        private final String node;
        private final Map<String, JobStatus> jobs = new ConcurrentHashMap<>();
        public final List<SnapshotJobRequest> snapshotRequests = new CopyOnWriteArrayList<>();
        public final List<RestoreJobRequest> restoreRequests = new CopyOnWriteArrayList<>();
        public final List<String> deletedImages = new CopyOnWriteArrayList<>();
        /** Jobs answer SUCCEEDED on the first poll after they were started. */
        public volatile boolean finishJobsOnPoll = true;
        /** Every call throws AgentUnavailableException. */
        public volatile boolean unreachable;
        /** Restores fail with this reason when set. */
        public volatile String failRestoresWith;
        public volatile String gpuModel = IDENTITY.gpuModel();

        FakeAgent(String node) {
            this.node = node;
        }

        @Override
        public NodeCapabilities capabilities() {
            reach();
            return new NodeCapabilities(node, "test", IDENTITY.criuVersion(), IDENTITY.driverVersion(),
                    List.of(new NodeCapabilities.GpuInfo("GPU-1", gpuModel, 80L << 30)), false, false, 1L << 40, 2, 0);
        }

        @Override
        public JobStatus startSnapshot(SnapshotJobRequest request) {
            reach();
            snapshotRequests.add(request);
            return jobs.computeIfAbsent(request.jobId(), id -> running(id, JobKind.SNAPSHOT, request.imageId()));
        }

        @Override
        public JobStatus startRestore(RestoreJobRequest request) {
            reach();
            restoreRequests.add(request);
            if (request.expected() != null && !gpuModel.equals(request.expected().gpuModel())) {
                throw new AgentRejectedException("IncompatibleNode", "agent check: GPU model differs");
            }
            return jobs.computeIfAbsent(request.jobId(), id -> running(id, JobKind.RESTORE, request.imageId()));
        }

        @Override
        public JobStatus job(String jobId) {
            reach();
            JobStatus job = jobs.get(jobId);
            if (job != null && !job.state().isTerminal() && finishJobsOnPoll) {
                job = job.kind() == JobKind.RESTORE && failRestoresWith != null ? failed(job, failRestoresWith) : succeeded(job);
                jobs.put(jobId, job);
            }
            return job;
        }

        @Override
        public List<ImageInfo> images(String namespace) {
            reach();
            return List.of();
        }

        @Override
        public void deleteImage(String namespace, String imageId) {
            reach();
            deletedImages.add(namespace + "/" + imageId);
        }

        /** Finishes a held job successfully. */
        public void succeed(String jobId) {
            jobs.computeIfPresent(jobId, (id, job) -> succeeded(job));
        }

        public void fail(String jobId, String reason) {
            jobs.computeIfPresent(jobId, (id, job) -> failed(job, reason));
        }

        public Optional<JobStatus> jobStatus(String jobId) {
            return Optional.ofNullable(jobs.get(jobId));
        }

        /** Forgets every job, as an agent whose node storage was wiped would. */
        public void forgetJobs() {
            jobs.clear();
        }

        private void reach() {
            if (unreachable) {
                throw new AgentUnavailableException("connection refused (test)");
            }
        }

        private static JobStatus running(String id, JobKind kind, String imageId) {
            return new JobStatus(id, kind, JobState.RUNNING, kind == JobKind.SNAPSHOT ? "criu-dump" : "criu-restore",
                    Map.of(), 0, 0, null, null, imageId, 0, null, List.of());
        }

        private static JobStatus succeeded(JobStatus job) {
            boolean snapshot = job.kind() == JobKind.SNAPSHOT;
            Map<String, Long> phases = snapshot
                    ? Map.of("prepare", 300L, "gpu-checkpoint", 600L, "criu-dump", 800L, "finalize", 100L)
                    : Map.of("stage", 200L, "criu-restore", 1200L, "gpu-restore", 600L, "wake", 800L, "ready", 400L);
            return new JobStatus(job.jobId(), job.kind(), JobState.SUCCEEDED, snapshot ? "finalize" : "ready",
                    new java.util.TreeMap<>(phases), phases.values().stream().mapToLong(Long::longValue).sum(), 0, null, null,
                    job.imageId(), snapshot ? 1_900_000_000L : 0, snapshot ? IDENTITY : null,
                    List.of(IDENTITY.gpuModel() + "/GPU-1"));
        }

        private static JobStatus failed(JobStatus job, String reason) {
            return new JobStatus(job.jobId(), job.kind(), JobState.FAILED, "criu-restore", Map.of("stage", 100L), 150, 0,
                    reason, "criu: restore failed (test)", job.imageId(), 0, null, List.of());
        }
    }
}
