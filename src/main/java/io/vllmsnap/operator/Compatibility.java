package io.vllmsnap.operator;

import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.api.CompatibilityInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** Checks, before a restore moves a byte, that the target node and container match what the snapshot recorded. */
public final class Compatibility {
    private Compatibility() {
    }

    /**
     * @param recorded            identity recorded with the snapshot
     * @param node                capabilities of the target node's agent
     * @param targetImageDigest   image digest the placeholder container runs (null when the runtime did not report one)
     * @return the mismatches, empty when compatible
     */
    public static List<String> mismatches(CompatibilityInfo recorded, NodeCapabilities node, String targetImageDigest) {
        List<String> problems = new ArrayList<>();
        if (recorded == null) {
            return problems;
        }
        if (recorded.gpuModel != null && !recorded.gpuModel.isBlank()) {
            List<String> models = node.gpus() == null ? List.of()
                    : node.gpus().stream().map(NodeCapabilities.GpuInfo::model).distinct().toList();
            if (!models.contains(recorded.gpuModel)) {
                problems.add("GPU model " + recorded.gpuModel + " recorded, node has " + (models.isEmpty() ? "no GPU" : models));
            }
        }
        differs(problems, "driver version", recorded.driverVersion, node.driverVersion());
        differs(problems, "CRIU version", recorded.criuVersion, node.criuVersion());
        if (targetImageDigest != null) {
            differs(problems, "container image digest", recorded.containerImageDigest, targetImageDigest);
        }
        return problems;
    }

    private static void differs(List<String> problems, String what, String recorded, String actual) {
        if (recorded != null && !recorded.isBlank() && !Objects.equals(recorded, actual)) {
            problems.add(what + " " + recorded + " recorded, node has " + actual);
        }
    }

    public static CompatibilityIdentity toIdentity(CompatibilityInfo info) {
        if (info == null) {
            return null;
        }
        return new CompatibilityIdentity(info.gpuModel, info.driverVersion, info.criuVersion, info.containerImageDigest,
                info.vllmArgs == null ? List.of() : List.copyOf(info.vllmArgs));
    }
}
