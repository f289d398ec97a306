package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_EMPTY)
public class VllmSnapshotStatus {
    public SnapshotPhase phase;
    public Long observedGeneration;
    public List<Condition> conditions = new ArrayList<>();

    @JsonPropertyDescription("Node the source pod runs on and the image is stored on.")
    public String node;
    @JsonPropertyDescription("UID of the source pod when the snapshot started; a pod recreated under the same name is refused.")
    public String podUid;
    public String containerId;
    @JsonPropertyDescription("Agent job ID, derived from this resource's UID so a retried request finds the same job.")
    public String jobId;
    @JsonPropertyDescription("Phase the agent job runs now (or ran last).")
    public String jobPhase;
    public Integer queuePosition;

    public String imageId;
    public Long sizeBytes;
    @JsonPropertyDescription("Image size, human readable.")
    public String size;
    @JsonPropertyDescription("GPUs the snapshot holds state of, as model/uuid.")
    public List<String> gpus = new ArrayList<>();
    @JsonPropertyDescription("Duration of every snapshot phase in milliseconds, in execution order.")
    public Map<String, Long> phaseMillis = new LinkedHashMap<>();
    public Long totalMillis;
    @JsonPropertyDescription("Total snapshot duration, human readable.")
    public String duration;
    public String startedAt;
    public String completedAt;

    public CompatibilityInfo compatibility;
    @JsonPropertyDescription("ConfigMap (owned by this snapshot) holding the source pod template that restores create pods from.")
    public String podTemplateConfigMap;
    @JsonPropertyDescription("Consecutive failed attempts to reach the node agent; drives the retry backoff.")
    public Integer agentRetries;
}
