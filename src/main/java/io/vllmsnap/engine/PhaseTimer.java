package io.vllmsnap.engine;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Times named phases in the order they ran: by default each phase is its step alone. */
final class PhaseTimer {
    private final Map<String, Double> seconds = new LinkedHashMap<>();
    private final long start = System.nanoTime();
    private final Progress progress;
    private final boolean backToBack;
    private long lastEnd = start;

    PhaseTimer(Progress progress) {
        this(progress, false);
    }

    private PhaseTimer(Progress progress, boolean backToBack) {
        this.progress = progress;
        this.backToBack = backToBack;
    }

    /**
     * Phases back to back: each runs from the end of the one before (the first from the timer's start), so what runs
     * between two steps (building the next step, in a cold JVM linking its lambda) is in the next phase and the
     * phases add up to the total.
     */
    static PhaseTimer backToBack(Progress progress) {
        return new PhaseTimer(progress, true);
    }

    interface Step<T> {
        T run() throws Exception;
    }

    interface VoidStep {
        void run() throws Exception;
    }

    <T> T time(String phase, String detail, Step<T> step) throws Exception {
        long previousEnd = lastEnd;
        progress.phase(phase, detail);
        long t0 = backToBack ? previousEnd : System.nanoTime();
        try {
            return step.run();
        } finally {
            lastEnd = System.nanoTime();
            seconds.merge(phase, (lastEnd - t0) / 1e9, Double::sum);
        }
    }

    void time(String phase, String detail, VoidStep step) throws Exception {
        time(phase, detail, () -> {
            step.run();
            return null;
        });
    }

    double totalSeconds() {
        return (System.nanoTime() - start) / 1e9;
    }

    Map<String, Double> phases() {
        return Collections.unmodifiableMap(new LinkedHashMap<>(seconds));
    }
}
