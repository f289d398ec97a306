package io.vllmsnap.agent.api;

/**
 * Asks an agent to checkpoint one container of a pod on its node.
 *
 * @param jobId         caller-chosen, stable across retries (the operator derives it from the CR's UID), so a repeated
 *                      request finds the running job instead of starting a second one
 * @param namespace     namespace of the source pod; the image is stored under it and only restores in it may read it
 * @param imageId       caller-chosen image ID (DNS label)
 * @param podUid        UID of the source pod: a pod recreated under the same name has another UID and is refused
 * @param containerName container of the pod to dump
 * @param containerId   runtime container ID from pod status ({@code containerd://...}, {@code cri-o://...})
 * @param sleepLevel    0 (transparent), 1 or 2: vLLM sleep level asked for before the GPU checkpoint
 * @param leaveRunning  whether the source keeps serving after the dump
 * @param vllmPort      port of the vLLM HTTP server inside the container
 */
public record SnapshotJobRequest(
        String jobId,
        String namespace,
        String imageId,
        String podUid,
        String containerName,
        String containerId,
        int sleepLevel,
        boolean leaveRunning,
        int vllmPort) {
}
