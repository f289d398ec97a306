package io.vllmsnap.agent.discovery;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * A real process in its own PID and mount namespaces, placed into a cgroup2 cgroup laid out like a kubelet's, is
 * found by pod UID and container ID through the machine's real /sys/fs/cgroup and /proc (root required).
 */
class ContainerDiscoveryRealCgroupTest {

    private static final Path CGROUP_ROOT = Paths.get("/sys/fs/cgroup");
    private final String podUid = UUID.randomUUID().toString();
    private final String containerId = (UUID.randomUUID().toString() + UUID.randomUUID()).replace("-", "");
    private Path testTop;
    private Process unshare;

    @Test
    void findsInitNamespacesAndProcessesOfARealContainer() throws Exception {
        Path v2 = new CgroupLocator(CGROUP_ROOT).unifiedHierarchy().orElseThrow(() -> new AssertionError("no cgroup2 hierarchy"));
        testTop = v2.resolve("vllmsnap-test-" + podUid.substring(0, 8));
        Path container = Files.createDirectories(testTop.resolve("kubepods/besteffort/pod" + podUid + "/" + containerId));

        unshare = new ProcessBuilder("unshare", "--pid", "--fork", "--mount-proc", "sleep", "300")
                .redirectErrorStream(true).start();
        int init = awaitChild(unshare.pid());
        Files.writeString(container.resolve("cgroup.procs"), Integer.toString(init));

        DiscoveredContainer found = new ContainerDiscovery(CGROUP_ROOT, Paths.get("/proc"))
                .discover(podUid, "containerd://" + containerId);

        assertThat(found.cgroup()).isEqualTo(container);
        assertThat(found.initPid()).isEqualTo(init);
        assertThat(found.pids()).containsExactly(init);
        ProcFs proc = new ProcFs(Paths.get("/proc"));
        int self = (int) ProcessHandle.current().pid();
        assertThat(found.namespaces().get("pid")).isNotEqualTo(proc.namespaceInode(self, "pid"));
        assertThat(found.namespaces().get("mnt")).isNotEqualTo(proc.namespaceInode(self, "mnt"));
        assertThat(found.namespaces().get("net")).isEqualTo(proc.namespaceInode(self, "net"));
        assertThat(found.root()).isEqualTo(Paths.get("/proc/" + init + "/root"));
    }

    private static int awaitChild(long parent) {
        List<Integer> children = new ArrayList<>();
        await().atMost(10, TimeUnit.SECONDS).until(() -> {
            Path file = Paths.get("/proc/" + parent + "/task/" + parent + "/children");
            String text = Files.exists(file) ? Files.readString(file).trim() : "";
            if (text.isEmpty()) {
                return false;
            }
            children.add(Integer.parseInt(text.split("\\s+")[0]));
            return true;
        });
        return children.getFirst();
    }

    @AfterEach
    void cleanUp() throws IOException, InterruptedException {
        if (unshare != null) {
            unshare.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
            unshare.destroyForcibly();
            unshare.waitFor(10, TimeUnit.SECONDS);
        }
        if (testTop != null && Files.exists(testTop)) {
            try (Stream<Path> dirs = Files.walk(testTop)) {
                for (Path dir : dirs.filter(Files::isDirectory).sorted(Comparator.reverseOrder()).toList()) {
                    await().atMost(10, TimeUnit.SECONDS).ignoreExceptions().until(() -> {
                        Files.delete(dir);
                        return true;
                    });
                }
            }
        }
    }
}
