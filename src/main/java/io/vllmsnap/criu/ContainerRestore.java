package io.vllmsnap.criu;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Restore of a {@link ContainerDump} into another (placeholder) container: in a new PID and mount namespace made by
 * CRIU, rooted at {@code root}, inside the target's network namespace, joining its UTS and IPC namespaces. CRIU is
 * started inside the target's cgroups so the restored tree is created, accounted and killed there. TCP connections
 * come back closed: the copy has another address.
 *
 * @param imageDir       CRIU's images
 * @param workDir        where the log ({@value Criu#RESTORE_LOG}) and the pid file ({@value #PID_FILE}) go
 * @param root           the target's root file system; CRIU wants it to be a mount point (see {@link RootMount})
 * @param target         the target container's namespaces
 * @param cgroupProcs    the target's {@code cgroup.procs} files CRIU joins before it restores
 * @param netnsKey       key the source's network namespace was recorded under at dump
 * @param externalMounts key → path in this mount namespace to bind where the source had that mount
 * @param timeout        how long CRIU may take
 */
public record ContainerRestore(Path imageDir, Path workDir, Path root, TargetNamespaces target, List<Path> cgroupProcs,
                               String netnsKey, Map<String, String> externalMounts, Duration timeout) {

    public static final String PID_FILE = "restored.pid";

    /** Namespace files of the target container, e.g. {@code /proc/PID/ns/net}. */
    public record TargetNamespaces(Path net, Path uts, Path ipc) {
    }

    /** Where CRIU writes the restored tree's root PID (a host PID). */
    public Path pidFile() {
        return workDir.resolve(PID_FILE);
    }

    public Path logFile() {
        return workDir.resolve(Criu.RESTORE_LOG);
    }
}
