package io.vllmsnap.image.store;

import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageRef;

import java.nio.file.Path;

/**
 * The {@code node} store: an image lives only in the cache of the node that made it, as before images could travel.
 * Nothing is published and nothing can be pulled, so a restore must run on that node, and the cache never evicts
 * such an image (it is the only copy).
 */
public final class NodeStore implements ImageStoreBackend {

    public static final String KIND = "node";

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public boolean shared() {
        return false;
    }

    @Override
    public void publish(ImageRef ref, Path imageDir, TransferListener listener) {
        // the image already is where this store keeps it
    }

    @Override
    public RemoteImage open(ImageRef ref) throws ImageException {
        throw new ImageException(ImageException.Reason.ImageNotFound, "image " + ref + " is not on this node, and the"
                + " node store keeps images only on the node that made them");
    }

    @Override
    public boolean exists(ImageRef ref) {
        return false;
    }

    @Override
    public void delete(ImageRef ref) {
        // the node cache deletes the only copy
    }
}
