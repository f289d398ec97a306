package io.vllmsnap.agent.api;

import java.util.List;

/**
 * What must match between the node a snapshot was taken on and the node it is restored on. The node half
 * (GPU model, driver, CRIU) is filled by the agent; the container half (image digest, vLLM args) by the operator.
 */
public record CompatibilityIdentity(
        String gpuModel,
        String driverVersion,
        String criuVersion,
        String containerImageDigest,
        List<String> vllmArgs) {
}
