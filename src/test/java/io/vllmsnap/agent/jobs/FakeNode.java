package io.vllmsnap.agent.jobs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** A fake node for job tests: a cgroup2 tree and a /proc tree holding pods whose containers have one process each. */
final class FakeNode {

    final Path cgroupRoot;
    final Path procRoot;
    private int nextPid = 4000;

    FakeNode(Path dir) throws IOException {
        cgroupRoot = Files.createDirectories(dir.resolve("cgroup"));
        procRoot = Files.createDirectories(dir.resolve("proc"));
        Files.writeString(cgroupRoot.resolve("cgroup.controllers"), "");
    }

    /** Adds a running container of a pod; its one process is PID 1 of its own PID namespace. */
    int addContainer(String podUid, String containerHexId) throws IOException {
        int pid = nextPid++;
        Path cg = Files.createDirectories(cgroupRoot.resolve("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                + podUid.replace('-', '_') + ".slice/cri-containerd-" + containerHexId + ".scope"));
        Files.writeString(cg.resolve("cgroup.procs"), pid + "\n");
        Path proc = Files.createDirectories(procRoot.resolve(Integer.toString(pid)));
        Files.writeString(proc.resolve("status"), "Name:\tserver\nPPid:\t1\nNSpid:\t" + pid + "\t1\n");
        Path ns = Files.createDirectories(proc.resolve("ns"));
        for (String type : new String[] {"net", "ipc", "uts", "mnt", "pid"}) {
            Files.createSymbolicLink(ns.resolve(type), Paths.get(type + ":[" + (4026530000L + pid) + "]"));
        }
        return pid;
    }
}
