package io.vllmsnap.engine;

import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Admission for jobs on one node: a second job on a source that already has one is refused at once; beyond
 * {@code maxConcurrent} running jobs, new ones wait in arrival order (CRIU and page-cache traffic compete for the
 * same memory bandwidth, so running more at once only makes each slower).
 */
public final class JobLimiter {
    private final Semaphore slots;
    private final int maxConcurrent;
    private final Set<String> busy = ConcurrentHashMap.newKeySet();

    public JobLimiter(int maxConcurrent) {
        if (maxConcurrent < 1) {
            throw new IllegalArgumentException("maxConcurrent must be >= 1, was " + maxConcurrent);
        }
        this.maxConcurrent = maxConcurrent;
        this.slots = new Semaphore(maxConcurrent, true);
    }

    /** A held slot; closing it releases the slot and the source. */
    public final class Permit implements AutoCloseable {
        private final String key;
        private boolean closed;

        private Permit(String key) {
            this.key = key;
        }

        @Override
        public synchronized void close() {
            if (!closed) {
                closed = true;
                slots.release();
                busy.remove(key);
            }
        }
    }

    /**
     * Claims {@code key} (a source or image) and then waits up to {@code maxWait} for a free slot.
     *
     * @throws SourceBusyException when a job on {@code key} is running or queued
     * @throws EngineException     when no slot freed up within {@code maxWait}
     */
    public Permit acquire(String key, Duration maxWait) throws EngineException {
        if (!busy.add(key)) {
            throw new SourceBusyException("another job on " + key + " is running; refusing to interleave");
        }
        try {
            if (!slots.tryAcquire(maxWait.toMillis(), TimeUnit.MILLISECONDS)) {
                busy.remove(key);
                throw new EngineException("no job slot free within " + maxWait.toSeconds() + " s (" + maxConcurrent
                        + " jobs run at once on this node)");
            }
            return new Permit(key);
        } catch (InterruptedException e) {
            busy.remove(key);
            Thread.currentThread().interrupt();
            throw new EngineException("interrupted while queued for a job slot");
        }
    }

    /** Jobs waiting for a slot. */
    public int queued() {
        return slots.getQueueLength();
    }

    /** Jobs holding a slot. */
    public int running() {
        return maxConcurrent - slots.availablePermits();
    }
}
