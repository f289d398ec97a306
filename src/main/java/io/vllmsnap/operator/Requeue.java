package io.vllmsnap.operator;

import java.time.Duration;

/** What one reconciliation learnt about when to look again: the earliest of the delays asked for. */
final class Requeue {
    private Duration after;

    void after(Duration delay) {
        if (after == null || delay.compareTo(after) < 0) {
            after = delay;
        }
    }

    Duration delay() {
        return after;
    }
}
