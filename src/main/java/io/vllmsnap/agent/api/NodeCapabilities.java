package io.vllmsnap.agent.api;

import java.util.List;

/**
 * What one node's agent can do, probed at agent start and refreshed on request.
 *
 * @param mpsDaemonRunning     an MPS control daemon runs on the node
 * @param mpsCheckpointSupported whether the driver checkpointed an MPS client in the start-up probe
 * @param freeImageBytes       free bytes on the image storage
 */
public record NodeCapabilities(
        String nodeName,
        String agentVersion,
        String criuVersion,
        String driverVersion,
        List<GpuInfo> gpus,
        boolean mpsDaemonRunning,
        boolean mpsCheckpointSupported,
        long freeImageBytes,
        int maxConcurrentJobs,
        int queuedJobs) {

    public record GpuInfo(String uuid, String model, long memoryBytes) {
    }
}
