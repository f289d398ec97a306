package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** CRIU's {@code --root} must be a mount point: a (non-recursive) bind of a root file system, and its removal. */
public final class RootMount {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private RootMount() {
    }

    /**
     * Binds {@code source} at {@code target}. A trailing slash makes {@code /proc/PID/root} resolve to the process's
     * root rather than the link itself. The bind is made private: on a node whose root is a shared mount, mounts
     * that other restores or the kubelet make meanwhile would otherwise propagate into it, and CRIU fails on a
     * mount that vanishes while it reads the tree ("open_tree ... No such file or directory", seen when two
     * restores ran at once).
     */
    public static void bind(Path source, Path target) throws CriuException {
        String from = source.toString().endsWith("/") ? source.toString() : source + "/";
        run(List.of("mount", "--bind", "--make-private", from, target.toString()));
    }

    /** Detaches a root bound by {@link #bind} (lazily: a restored tree no longer needs it once running). */
    public static void detach(Path target) throws CriuException {
        run(List.of("umount", "--lazy", target.toString()));
    }

    private static void run(List<String> cmd) throws CriuException {
        try {
            ChildProcess.Result r = ChildProcess.run(cmd, TIMEOUT);
            if (!r.ok()) {
                throw new CriuException(String.join(" ", cmd) + " failed: " + r.output().strip(), List.of());
            }
        } catch (IOException | ChildProcess.TimeoutException e) {
            throw new CriuException(String.join(" ", cmd) + " failed: " + e.getMessage(), List.of());
        }
    }
}
