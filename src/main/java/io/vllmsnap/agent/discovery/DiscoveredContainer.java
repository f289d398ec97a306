package io.vllmsnap.agent.discovery;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A running container as seen from the host.
 *
 * @param cgroup     the container's cgroup directory
 * @param initPid    host PID of the container's init (PID 1 of its PID namespace): the root of the tree to dump
 * @param pids       host PIDs of every process in the cgroup
 * @param namespaces namespace inode per type ({@code net}, {@code ipc}, {@code uts}, {@code mnt}, {@code pid}) of init
 * @param procDir    {@code /proc/<initPid>} on the host, through which its namespaces and root are reached
 */
public record DiscoveredContainer(Path cgroup, int initPid, List<Integer> pids, Map<String, Long> namespaces, Path procDir) {

    /** The container's root filesystem as its init sees it. */
    public Path root() {
        return procDir.resolve("root");
    }

    /** The namespace file of init, for example {@code ns/net}, to open and hand to CRIU. */
    public Path namespaceFile(String type) {
        return procDir.resolve("ns").resolve(type);
    }
}
