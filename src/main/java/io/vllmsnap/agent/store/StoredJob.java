package io.vllmsnap.agent.store;

import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;

import java.time.Instant;

/** One job as kept on node storage: its request (exactly one of the two is set) and its latest status. */
public record StoredJob(Instant acceptedAt, SnapshotJobRequest snapshot, RestoreJobRequest restore, JobStatus status) {

    public String namespace() {
        return snapshot != null ? snapshot.namespace() : restore.namespace();
    }

    public String imageId() {
        return snapshot != null ? snapshot.imageId() : restore.imageId();
    }

    public StoredJob withStatus(JobStatus newStatus) {
        return new StoredJob(acceptedAt, snapshot, restore, newStatus);
    }
}
