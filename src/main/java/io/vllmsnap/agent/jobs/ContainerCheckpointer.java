package io.vllmsnap.agent.jobs;

import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.DiscoveredContainer;

import java.nio.file.Path;
import java.util.List;

/**
 * The seam between the agent's jobs and the checkpoint/restore engine: dump a discovered container into an image
 * directory, or restore an image into a discovered placeholder container. The agent owns IDs, storage, queueing and
 * bookkeeping; an implementation owns CRIU and the GPU.
 */
public interface ContainerCheckpointer {

    /**
     * Dumps the container's process tree into {@code imageDir} (empty, private, on node storage).
     *
     * @param workDir scratch directory for logs, removed after the job
     */
    SnapshotOutcome snapshot(DiscoveredContainer source, SnapshotJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception;

    /** Restores the image in {@code imageDir} (read-only to this call) into the placeholder container. */
    RestoreOutcome restore(DiscoveredContainer placeholder, RestoreJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception;

    /**
     * Undoes what a job cut short (agent stopped, failure) may have left in its work directory, such as mounts,
     * before the directory is removed.
     */
    default void cleanUp(Path workDir) {
    }

    /** The node half of the compatibility identity: GPU model, driver version, CRIU version of this node. */
    CompatibilityIdentity nodeIdentity();

    /** GPUs of this node, for the capabilities answer; none without a GPU driver. */
    default List<io.vllmsnap.agent.api.NodeCapabilities.GpuInfo> gpus() {
        return List.of();
    }

    record SnapshotOutcome(CompatibilityIdentity identity, List<String> gpus) {
    }

    record RestoreOutcome(List<String> gpus) {
    }

    /** Told as each phase begins and ends, so the job record shows where a job is and what each phase cost. */
    interface PhaseListener {
        void started(String phase);

        void finished(String phase, long millis);
    }
}
