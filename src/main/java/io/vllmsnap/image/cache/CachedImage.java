package io.vllmsnap.image.cache;

import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.VerifiedImage;
import io.vllmsnap.image.store.ImagePuller;

import java.nio.file.Path;
import java.util.Optional;

/**
 * A complete, verified copy on this node, pinned until closed: the cache does not evict or delete it while a job
 * holds it. Close it when the job ends (a process restored with map fill then keeps it from eviction by mapping it).
 *
 * @param hit  whether the copy was already on the node (no pull)
 * @param pull what the pull did, on a miss
 */
public record CachedImage(ImageRef ref, Path dir, VerifiedImage verified, boolean hit,
                          Optional<ImagePuller.Result> pull, ImagePin pin) implements AutoCloseable {

    @Override
    public void close() {
        pin.close();
    }
}
