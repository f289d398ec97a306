package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.model.annotation.LabelSelector;
import io.fabric8.kubernetes.model.annotation.StatusReplicas;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class VllmRestoreStatus {
    public RestorePhase phase;
    public Long observedGeneration;
    public List<Condition> conditions = new ArrayList<>();

    @StatusReplicas
    @JsonPropertyDescription("Pods that exist for this restore (any phase but Failed).")
    public Integer replicas;
    @JsonPropertyDescription("Pods restored (or cold-started) and serving.")
    public Integer readyReplicas;
    @LabelSelector
    @JsonPropertyDescription("Label selector of this restore's pods, for the scale subresource (HPA, KEDA).")
    public String selector;

    public String snapshotImageId;
    public List<RestorePodStatus> pods = new ArrayList<>();
    @JsonPropertyDescription("Latency of the last successful restore (request accepted to first token), human readable.")
    public String lastRestoreLatency;
    public Long lastRestoreMillis;
    @JsonPropertyDescription("Restores that failed in a row; reset by a successful restore.")
    public Integer consecutiveFailures;
    @JsonPropertyDescription("No replacement pod is created before this time (backoff after failed restores).")
    public String nextAttemptAfter;
}
