package io.vllmsnap.engine;

import java.time.Duration;

/**
 * Time limits of a job's steps.
 *
 * @param http      one HTTP call to the server (sleep and wake included)
 * @param gpuLock   how long the GPU lock waits for running CUDA work
 * @param criu      one criu dump or restore
 * @param ready     restored server answering {@code /health}
 * @param queue     waiting for a free job slot
 */
public record Timeouts(Duration http, Duration gpuLock, Duration criu, Duration ready, Duration queue) {
    public static Timeouts defaults() {
        return new Timeouts(Duration.ofSeconds(120), Duration.ofSeconds(30), Duration.ofMinutes(10),
                Duration.ofSeconds(120), Duration.ofMinutes(10));
    }
}
