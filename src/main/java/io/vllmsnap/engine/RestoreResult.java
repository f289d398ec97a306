package io.vllmsnap.engine;

import java.util.Map;

/**
 * A restored server.
 *
 * @param pid          host PID of the restored tree's root (PID 1 of a new PID namespace); killing it stops all
 * @param phaseSeconds each phase's duration, in order
 * @param totalSeconds request accepted → first token (or → ready without the first-token probe)
 * @param firstText    text of the first-token probe, or null
 */
public record RestoreResult(long pid, Map<String, Double> phaseSeconds, double totalSeconds, long stagedBytes,
                            String firstText) {
}
