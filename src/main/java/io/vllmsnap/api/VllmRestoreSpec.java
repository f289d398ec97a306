package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.model.annotation.SpecReplicas;
import java.util.LinkedHashMap;
import java.util.Map;

public class VllmRestoreSpec {
    @Required
    @Pattern(ApiConstants.DNS_LABEL)
    @ValidationRule(value = "self == oldSelf", message = "snapshotName is immutable: create another VllmRestore for another snapshot")
    @JsonPropertyDescription("VllmSnapshot to restore from, in the same namespace (a restore may only use snapshots of its own namespace).")
    public String snapshotName;

    @SpecReplicas
    @Min(0)
    @Default("1")
    @JsonPropertyDescription("Number of restored pods wanted. Scale subresource: kubectl scale, HPA and KEDA change it.")
    public int replicas = 1;

    @JsonPropertyDescription("Labels put on every restored pod, so that a Service selects them.")
    public Map<String, String> labels = new LinkedHashMap<>();

    @JsonPropertyDescription("Node selector for restored pods, added to the one of the recorded pod template.")
    public Map<String, String> nodeSelector = new LinkedHashMap<>();

    @Default("None")
    @JsonPropertyDescription("None: a failed restore is retried in a new pod with backoff. ColdStart: a failed restore starts the "
            + "pod's original command instead, so capacity still arrives.")
    public Fallback fallback = Fallback.None;

    @Min(1)
    @Default("3")
    @JsonPropertyDescription("Consecutive failed restores after which the Degraded condition is set.")
    public int failureThreshold = 3;

    public VllmRestoreSpec() {
    }

    public VllmRestoreSpec(String snapshotName, int replicas) {
        this.snapshotName = snapshotName;
        this.replicas = replicas;
    }
}
