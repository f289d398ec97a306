package io.vllmsnap.image.cache;

import io.vllmsnap.image.ImageRef;

import java.util.concurrent.atomic.AtomicBoolean;

/** Holds an image in the cache (no eviction, no deletion) until closed; closing twice releases once. */
public final class ImagePin implements AutoCloseable {

    private final ImageRef ref;
    private final NodeImageCache cache;
    private final AtomicBoolean released = new AtomicBoolean();

    ImagePin(ImageRef ref, NodeImageCache cache) {
        this.ref = ref;
        this.cache = cache;
    }

    public ImageRef ref() {
        return ref;
    }

    @Override
    public void close() {
        if (released.compareAndSet(false, true)) {
            cache.unpin(ref);
        }
    }
}
