package io.vllmsnap.image.cache;

import java.util.concurrent.atomic.LongAdder;

/**
 * Plain counters of the node cache, for the agent to export (Micrometer function counters and gauges):
 * pulls and their bytes and seconds, hits and misses of restores, evictions, and the cache's size (a gauge the
 * cache answers itself: {@link NodeImageCache#sizeBytes()}).
 */
public final class CacheMetrics {

    final LongAdder hits = new LongAdder();
    final LongAdder misses = new LongAdder();
    final LongAdder pulls = new LongAdder();
    final LongAdder pullFailures = new LongAdder();
    final LongAdder pullBytes = new LongAdder();
    final LongAdder pullNanos = new LongAdder();
    final LongAdder verifications = new LongAdder();
    final LongAdder verifiedBytes = new LongAdder();
    final LongAdder evictions = new LongAdder();
    final LongAdder evictedBytes = new LongAdder();

    /** Restores that found a complete, verified copy on the node. */
    public long hits() {
        return hits.sum();
    }

    /** Restores that had to pull first. */
    public long misses() {
        return misses.sum();
    }

    public long pulls() {
        return pulls.sum();
    }

    public long pullFailures() {
        return pullFailures.sum();
    }

    /** Bytes fetched from stores (resumed bytes are not fetched again). */
    public long pullBytes() {
        return pullBytes.sum();
    }

    public double pullSeconds() {
        return pullNanos.sum() / 1e9;
    }

    /** Full verifications (every byte hashed) of copies on the node. */
    public long verifications() {
        return verifications.sum();
    }

    public long verifiedBytes() {
        return verifiedBytes.sum();
    }

    public long evictions() {
        return evictions.sum();
    }

    public long evictedBytes() {
        return evictedBytes.sum();
    }
}
