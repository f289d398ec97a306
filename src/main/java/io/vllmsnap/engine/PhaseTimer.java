package io.vllmsnap.engine;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Times named phases in the order they ran. */
final class PhaseTimer {
    private final Map<String, Double> seconds = new LinkedHashMap<>();
    private final long start = System.nanoTime();
    private final Progress progress;

    PhaseTimer(Progress progress) {
        this.progress = progress;
    }

    interface Step<T> {
        T run() throws Exception;
    }

    interface VoidStep {
        void run() throws Exception;
    }

    <T> T time(String phase, String detail, Step<T> step) throws Exception {
        progress.phase(phase, detail);
        long t0 = System.nanoTime();
        try {
            return step.run();
        } finally {
            seconds.merge(phase, (System.nanoTime() - t0) / 1e9, Double::sum);
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
