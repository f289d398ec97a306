package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import java.util.LinkedHashMap;
import java.util.Map;

/** Status of one pod of a VllmRestore. */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public class RestorePodStatus {
    public String name;
    public String uid;
    public String node;
    @JsonPropertyDescription("Restore (from the snapshot) or ColdStart (original command, after a failed restore).")
    public RestorePath path;
    public RestorePodPhase phase;
    public String jobId;
    @JsonPropertyDescription("Duration of every restore phase in milliseconds, in execution order.")
    public Map<String, Long> phaseMillis = new LinkedHashMap<>();
    @JsonPropertyDescription("Restore latency: request accepted by the agent to first token, in milliseconds.")
    public Long totalMillis;
    public String reason;
    public String message;
    public String createdAt;
    public String readyAt;
}
