package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/**
 * What a restore target must match, recorded with the snapshot: the node half (GPU model, driver, CRIU) reported by the
 * agent, the container half (image digest from the pod status, vLLM args from the container spec) by the operator.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CompatibilityInfo {
    public String gpuModel;
    public String driverVersion;
    public String criuVersion;
    public String containerImageDigest;
    public List<String> vllmArgs;
}
