package io.vllmsnap.api;

import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** What to snapshot and how. Immutable: a snapshot is a record of one moment of one pod. */
@ValidationRule(value = "self == oldSelf", message = "spec is immutable: delete and recreate the VllmSnapshot to take another snapshot")
public class VllmSnapshotSpec {
    @Required
    @JsonPropertyDescription("The pod and container to snapshot.")
    public SourceRef source;

    @Min(0)
    @Max(2)
    @Default("0")
    @JsonPropertyDescription("vLLM sleep level asked for before the GPU checkpoint: 0 none (transparent), 1 weights to host and "
            + "KV cache dropped, 2 weights and KV cache dropped (smallest image, weights re-read on wake).")
    public int sleepLevel;

    @Default("true")
    @JsonPropertyDescription("Whether the source keeps serving after the snapshot.")
    public boolean leaveRunning = true;

    @Min(1)
    @Max(65535)
    @Default("8000")
    @JsonPropertyDescription("Port of the vLLM HTTP server inside the container.")
    public int vllmPort = 8000;

    public VllmSnapshotSpec() {
    }

    public VllmSnapshotSpec(SourceRef source, int sleepLevel) {
        this.source = source;
        this.sleepLevel = sleepLevel;
    }
}
