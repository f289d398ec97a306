package io.vllmsnap.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Map;

/**
 * The operator's own meters, exported at {@code /q/metrics} beside the Operator SDK's reconciliation meters:
 * <ul>
 * <li>{@code vllmsnap_restore_duration_seconds} histogram, tags {@code phase} (each agent phase and {@code total}) and
 * {@code result} ({@code success}/{@code failure});</li>
 * <li>{@code vllmsnap_snapshot_duration_seconds} histogram, same tags;</li>
 * <li>{@code vllmsnap_snapshot_size_bytes} distribution of image sizes;</li>
 * <li>{@code vllmsnap_restores_total} counter, tags {@code result} and {@code path} ({@code Restore}/{@code ColdStart});</li>
 * <li>{@code vllmsnap_snapshots_total} counter, tag {@code result}.</li>
 * </ul>
 */
@ApplicationScoped
public class VllmsnapMetrics {
    public static final String RESTORE_DURATION = "vllmsnap.restore.duration";
    public static final String SNAPSHOT_DURATION = "vllmsnap.snapshot.duration";
    public static final String SNAPSHOT_SIZE = "vllmsnap.snapshot.size";
    public static final String RESTORES = "vllmsnap.restores";
    public static final String SNAPSHOTS = "vllmsnap.snapshots";
    public static final String TOTAL_PHASE = "total";

    private final MeterRegistry registry;

    public VllmsnapMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    public void snapshotFinished(boolean success, Map<String, Long> phaseMillis, long totalMillis, long sizeBytes) {
        String result = result(success);
        recordPhases(SNAPSHOT_DURATION, "Time of each snapshot phase and of the whole snapshot", result, phaseMillis, totalMillis);
        Counter.builder(SNAPSHOTS).description("Snapshots finished").tag("result", result).register(registry).increment();
        if (success) {
            DistributionSummary.builder(SNAPSHOT_SIZE).description("Size of snapshot images").baseUnit("bytes")
                    .register(registry).record(sizeBytes);
        }
    }

    public void restoreFinished(boolean success, String path, Map<String, Long> phaseMillis, long totalMillis) {
        String result = result(success);
        recordPhases(RESTORE_DURATION, "Time of each restore phase and of the whole restore (request to first token)", result,
                phaseMillis, totalMillis);
        Counter.builder(RESTORES).description("Restores finished").tag("result", result).tag("path", path)
                .register(registry).increment();
    }

    private void recordPhases(String name, String description, String result, Map<String, Long> phaseMillis, long totalMillis) {
        if (phaseMillis != null) {
            phaseMillis.forEach((phase, millis) -> timer(name, description, phase, result).record(Duration.ofMillis(millis)));
        }
        timer(name, description, TOTAL_PHASE, result).record(Duration.ofMillis(totalMillis));
    }

    private Timer timer(String name, String description, String phase, String result) {
        return Timer.builder(name).description(description).tag("phase", phase).tag("result", result)
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(50))
                .maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry);
    }

    private static String result(boolean success) {
        return success ? "success" : "failure";
    }
}
