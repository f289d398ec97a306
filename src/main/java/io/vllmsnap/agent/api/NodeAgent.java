package io.vllmsnap.agent.api;

import java.util.List;

/**
 * The one way the operator talks to the agent of a node. Production: an HTTPS client of the agent's API.
 * Local mode: the engine itself, in process. Unit tests: a fake.
 *
 * <p>Every call is idempotent on its job or image ID, so an operator restarted at any point can repeat it.
 * Calls throw {@link AgentUnavailableException} when the agent cannot be reached and
 * {@link AgentRejectedException} when it refused the request (bad ID, incompatible node, busy source).
 */
public interface NodeAgent {

    NodeCapabilities capabilities();

    /** Starts (or finds, when the job ID is known) a snapshot job. */
    JobStatus startSnapshot(SnapshotJobRequest request);

    /** Starts (or finds, when the job ID is known) a restore job. */
    JobStatus startRestore(RestoreJobRequest request);

    /** @return the job, or {@code null} when the agent has no record of it */
    JobStatus job(String jobId);

    List<ImageInfo> images(String namespace);

    /** Deletes an image; deleting an image that is not there succeeds. */
    void deleteImage(String namespace, String imageId);
}
