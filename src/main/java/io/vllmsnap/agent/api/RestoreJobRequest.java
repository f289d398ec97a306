package io.vllmsnap.agent.api;

/**
 * Asks an agent to restore an image into the placeholder container of a new pod on its node.
 *
 * @param jobId             caller-chosen, stable across retries
 * @param namespace         namespace of the target pod; only images of this namespace may be read
 * @param imageId           image to restore
 * @param podUid            UID of the placeholder pod
 * @param containerName     placeholder container that receives the restored process tree
 * @param containerId       runtime container ID of the placeholder
 * @param vllmPort          port the restored server listens on
 * @param expected          compatibility identity recorded with the snapshot; the agent refuses before moving a byte
 *                          when its node does not match
 */
public record RestoreJobRequest(
        String jobId,
        String namespace,
        String imageId,
        String podUid,
        String containerName,
        String containerId,
        int vllmPort,
        CompatibilityIdentity expected) {
}
