package io.vllmsnap.agent.discovery;

import io.vllmsnap.agent.Ids;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/** From a pod UID and runtime container ID to the container's cgroup, processes, init and namespaces. */
public class ContainerDiscovery {

    private final CgroupLocator cgroups;
    private final ProcFs proc;

    public ContainerDiscovery(Path cgroupRoot, Path procRoot) {
        this.cgroups = new CgroupLocator(cgroupRoot);
        this.proc = new ProcFs(procRoot);
    }

    public DiscoveredContainer discover(String podUid, String containerId) {
        Ids.uid("podUid", podUid);
        Ids.ContainerRef ref = Ids.containerId("containerId", containerId);
        Path cgroup = cgroups.locate(podUid, ref);
        try {
            List<Integer> pids = proc.pidsInCgroup(cgroup);
            if (pids.isEmpty()) {
                throw new ContainerNotFoundException("container " + ref.id() + " of pod " + podUid
                        + " has no processes (cgroup " + cgroup + "): it is not running");
            }
            int init = proc.initOf(pids).orElseThrow(() -> new ContainerNotFoundException(
                    "processes of container " + ref.id() + " exited while being inspected"));
            return new DiscoveredContainer(cgroup, init, pids, proc.namespaces(init), proc.procDir(init));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot inspect container " + ref.id() + " of pod " + podUid, e);
        }
    }
}
