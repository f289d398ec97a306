package io.vllmsnap.image.store;

import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageRef;

import java.nio.file.Path;

/**
 * A place that keeps snapshot images for every node of a cluster (or, for {@code node}, for none but the one that
 * made them). Images are immutable: publishing the same image again is a no-op, publishing another image under the
 * same name is {@code ImageExists}. Restores never read from a store directly: the node cache pulls a complete,
 * verified local copy first.
 */
public interface ImageStoreBackend {

    /** {@code node}, {@code volume} or {@code oci}: what chart values and status name. */
    String kind();

    /** Whether another node can pull what this store holds (false for {@code node}). */
    boolean shared();

    /** Makes a complete local image directory (manifest, signature and listed files) available under {@code ref}. */
    void publish(ImageRef ref, Path imageDir, TransferListener listener) throws ImageException;

    /** Opens an image for a pull; {@code ImageNotFound} when the store has none of that name. */
    RemoteImage open(ImageRef ref) throws ImageException;

    boolean exists(ImageRef ref) throws ImageException;

    /** Removes an image; one that is not there is already removed. */
    void delete(ImageRef ref) throws ImageException;
}
