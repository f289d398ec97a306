package io.vllmsnap.engine;

import java.nio.file.Path;

/**
 * What to restore and how.
 *
 * @param image       a complete image directory (with its manifest)
 * @param rootfs      where the host's root file system is bind-mounted for CRIU's {@code --root}
 * @param stageReaders parallel readers that pull the image into the page cache first (0 = no staging)
 * @param firstToken  ask for one token after {@code /health} answers (the latency users feel)
 * @param lazyPages   start the tree before its memory is copied; pages arrive on first touch and in the background
 *                    (criu lazy-pages), so restore time no longer grows with the image size
 * @param netns       network namespace to restore into (e.g. {@code /proc/<placeholder pid>/ns/net}); required
 *                    exactly when the source had its own, null otherwise
 * @param host        address the engine reaches the restored server at (in {@code netns} when given)
 */
public record RestoreRequest(Path image, Path rootfs, int stageReaders, boolean firstToken, boolean lazyPages,
                             Timeouts timeouts, Path netns, String host) {

    public static final Path DEFAULT_ROOTFS = Path.of("/var/lib/vllmsnap/rootfs");

    public static RestoreRequest of(Path image) {
        return new RestoreRequest(image, DEFAULT_ROOTFS, 4, true, false, Timeouts.defaults(), null, "127.0.0.1");
    }

    /** The same request, restoring into network namespace {@code ns}, where the server is reached at {@code at}. */
    public RestoreRequest intoNetwork(Path ns, String at) {
        return new RestoreRequest(image, rootfs, stageReaders, firstToken, lazyPages, timeouts, ns, at);
    }
}
