package io.vllmsnap.image.store;

/**
 * Progress of a publish or pull in bytes. Called from several transfer threads (implementations must be thread-safe
 * and quick); {@code done} never decreases during one transfer and ends at {@code total} when it succeeds.
 */
@FunctionalInterface
public interface TransferListener {

    TransferListener NONE = (done, total) -> { };

    void progress(long doneBytes, long totalBytes);
}
