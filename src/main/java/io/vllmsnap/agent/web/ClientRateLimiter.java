package io.vllmsnap.agent.web;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/**
 * A request budget per client address (a token bucket: {@code burst} requests at once, refilled at
 * {@code perSecond}). The agent charges it for every request that does not carry an already approved token, so a
 * client sending junk, or a stream of fresh tokens each needing a TokenReview, is slowed down before it costs the
 * API server anything. The buckets of at most {@code MAX_CLIENTS} addresses are kept, least recently used first out.
 */
public class ClientRateLimiter {

    private static final int MAX_CLIENTS = 10_000;

    private final double perSecond;
    private final double burst;
    private final Clock clock;
    private final Cache<String, Bucket> buckets;

    public ClientRateLimiter(double perSecond, int burst, Clock clock) {
        if (perSecond <= 0 || burst < 1) {
            throw new IllegalArgumentException("a request limit needs a positive rate and a burst of at least 1");
        }
        this.perSecond = perSecond;
        this.burst = burst;
        this.clock = clock;
        this.buckets = Caffeine.newBuilder().maximumSize(MAX_CLIENTS).executor(Runnable::run).build();
    }

    /** @return empty when the request may go on, else how long the client should wait before the next one */
    public java.util.Optional<Duration> acquire(String client) {
        Bucket bucket = buckets.get(client, c -> new Bucket(burst, clock.instant()));
        synchronized (bucket) {
            Instant now = clock.instant();
            double elapsed = Math.max(0, Duration.between(bucket.refilledAt, now).toNanos() / 1e9);
            bucket.tokens = Math.min(burst, bucket.tokens + elapsed * perSecond);
            bucket.refilledAt = now;
            if (bucket.tokens >= 1) {
                bucket.tokens -= 1;
                return java.util.Optional.empty();
            }
            long waitMillis = (long) Math.ceil((1 - bucket.tokens) / perSecond * 1000);
            return java.util.Optional.of(Duration.ofMillis(Math.max(1, waitMillis)));
        }
    }

    private static final class Bucket {
        double tokens;
        Instant refilledAt;

        Bucket(double tokens, Instant refilledAt) {
            this.tokens = tokens;
            this.refilledAt = refilledAt;
        }
    }
}
