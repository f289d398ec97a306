package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;

/** Standard Kubernetes conditions: one per type, lastTransitionTime moves only when the status flips. */
public final class Conditions {
    public static final String READY = "Ready";
    public static final String AGENT_REACHABLE = "AgentReachable";
    public static final String IN_USE = "InUse";
    public static final String SNAPSHOT_READY = "SnapshotReady";
    public static final String DEGRADED = "Degraded";
    public static final String SOURCE_CHECKED = "SourceChecked";

    private Conditions() {
    }

    public static Optional<Condition> find(List<Condition> conditions, String type) {
        return conditions.stream().filter(c -> type.equals(c.getType())).findFirst();
    }

    /**
     * Sets a condition.
     *
     * @return true when its status or reason changed (a transition worth an Event)
     */
    public static boolean set(List<Condition> conditions, String type, boolean status, String reason, String message,
            Long generation) {
        String statusText = status ? "True" : "False";
        Condition existing = find(conditions, type).orElse(null);
        boolean transition = existing == null || !statusText.equals(existing.getStatus())
                || !reason.equals(existing.getReason());
        if (existing == null) {
            existing = new Condition();
            existing.setType(type);
            conditions.add(existing);
        }
        if (existing.getLastTransitionTime() == null || !statusText.equals(existing.getStatus())) {
            existing.setLastTransitionTime(Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        }
        existing.setStatus(statusText);
        existing.setReason(reason);
        existing.setMessage(message);
        existing.setObservedGeneration(generation);
        return transition;
    }

    public static boolean isTrue(List<Condition> conditions, String type) {
        return find(conditions, type).map(c -> "True".equals(c.getStatus())).orElse(false);
    }
}
