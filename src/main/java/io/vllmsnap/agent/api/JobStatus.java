package io.vllmsnap.agent.api;

import java.util.List;
import java.util.Map;

/**
 * What an agent reports about one job.
 *
 * @param phase          phase running now (or the last one run), for example {@code criu-dump}
 * @param phaseMillis    duration of every finished phase in milliseconds, in execution order
 * @param totalMillis    request accepted to done (for a restore: to the first token)
 * @param queuePosition  0 when running or done; otherwise the place in the node's queue
 * @param errorReason    machine-readable reason when FAILED (CamelCase, for a condition's reason)
 * @param errorMessage   human-readable cause, with the relevant CRIU or driver lines
 * @param imageId        the image written (snapshot) or read (restore)
 * @param sizeBytes      image size on disk
 * @param identity       node and container identity recorded with the image (snapshot jobs)
 * @param gpus           GPUs involved, as {@code model/uuid}
 */
public record JobStatus(
        String jobId,
        JobKind kind,
        JobState state,
        String phase,
        Map<String, Long> phaseMillis,
        long totalMillis,
        int queuePosition,
        String errorReason,
        String errorMessage,
        String imageId,
        long sizeBytes,
        CompatibilityIdentity identity,
        List<String> gpus) {
}
