package io.vllmsnap.operator;

import java.time.Duration;

/** Exponential backoff: base, 2 x base, 4 x base ... capped. */
public final class Backoff {
    private Backoff() {
    }

    /** @param attempt 1 for the first failure */
    public static Duration after(int attempt, Duration base, Duration max) {
        int shift = Math.max(0, Math.min(attempt - 1, 20));
        Duration delay = base.multipliedBy(1L << shift);
        return delay.compareTo(max) > 0 ? max : delay;
    }
}
