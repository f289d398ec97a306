package io.vllmsnap.image.store;

/**
 * Adds up bytes from several transfer threads and hands a {@link TransferListener} a rising count: at most one
 * report per {@value #STEP} bytes (and always the last), never a smaller number than before (bytes of a file that
 * has to be fetched again are taken back from the count, not from what was reported).
 */
public final class ProgressReporter {

    static final long STEP = 1 << 20;

    private final TransferListener listener;
    private final long total;
    private long done;
    private long reported = -1;

    public ProgressReporter(TransferListener listener, long total, long alreadyDone) {
        this.listener = listener;
        this.total = total;
        this.done = alreadyDone;
        report(true);
    }

    public synchronized void add(long bytes) {
        done += bytes;
        report(false);
    }

    /** Takes back bytes of a transfer that did not complete. */
    public synchronized void takeBack(long bytes) {
        done -= bytes;
    }

    public synchronized long done() {
        return done;
    }

    /** Reports the final count (when a transfer ends). */
    public synchronized void finish() {
        report(true);
    }

    private void report(boolean always) {
        if (done > reported && (always || done - reported >= STEP || done == total)) {
            reported = done;
            listener.progress(done, total);
        }
    }
}
