package io.vllmsnap.criu;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Dump of a whole container, as a container runtime does it: the tree of the container's init, its mount namespace
 * with the given mounts declared external, and its pod's network namespace declared external (it belongs to the pod,
 * not the container). Established TCP connections are dumped, with the network locked through nftables meanwhile.
 *
 * @param initPid        host PID of the container's init (PID 1 of its PID namespace)
 * @param imageDir       where CRIU writes its images
 * @param logFile        CRIU's log, kept out of the image directory
 * @param netnsInode     inode of the pod's network namespace
 * @param externalMounts mount point inside the container → key it is recorded under
 * @param leaveRunning   whether the container keeps running after the dump
 * @param timeout        how long CRIU may take
 */
public record ContainerDump(long initPid, Path imageDir, Path logFile, long netnsInode,
                            Map<String, String> externalMounts, boolean leaveRunning, Duration timeout) {

    /** Key the pod's network namespace is recorded under; a restore hands the target's namespace in under it. */
    public static final String NETNS_KEY = "podnet";
}
