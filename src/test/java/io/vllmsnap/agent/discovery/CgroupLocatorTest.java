package io.vllmsnap.agent.discovery;

import io.vllmsnap.agent.Ids;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Fake cgroup trees in the layouts the kubelet makes with each cgroup driver and runtime. */
class CgroupLocatorTest {

    static final String POD = "3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b";
    static final String OTHER_POD = "11111111-2222-3333-4444-555555555555";
    static final String CID = "0123456789abcdef".repeat(4);

    @TempDir
    Path root;

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            // unified cgroup v2, systemd driver
            "systemd containerd burstable, '', kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f2b8c1e_9d4a_4b6e_8f7a_1c2d3e4f5a6b.slice/cri-containerd-%s.scope",
            "systemd cri-o besteffort,     '', kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f2b8c1e_9d4a_4b6e_8f7a_1c2d3e4f5a6b.slice/crio-%s.scope",
            "systemd containerd guaranteed,'', kubepods.slice/kubepods-pod3f2b8c1e_9d4a_4b6e_8f7a_1c2d3e4f5a6b.slice/cri-containerd-%s.scope",
            // unified cgroup v2, cgroupfs driver
            "cgroupfs containerd burstable,'', kubepods/burstable/pod3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b/%s",
            "cgroupfs cri-o guaranteed,    '', kubepods/pod3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b/%s",
            // hybrid: cgroup2 mounted at unified/
            "hybrid systemd cri-o,    unified, kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f2b8c1e_9d4a_4b6e_8f7a_1c2d3e4f5a6b.slice/crio-%s.scope",
            "hybrid cgroupfs containerd, unified, kubepods/besteffort/pod3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b/%s",
            // kubelet nested under its own slice (kind, some distributions)
            "nested systemd containerd, '', kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubepods-besteffort-pod3f2b8c1e_9d4a_4b6e_8f7a_1c2d3e4f5a6b.slice/cri-containerd-%s.scope",
    })
    void findsTheContainerCgroup(String layout, String hierarchy, String containerPath) throws IOException {
        Path v2 = hierarchy.isEmpty() ? root : root.resolve(hierarchy);
        Files.createDirectories(v2);
        Files.writeString(v2.resolve("cgroup.controllers"), "");
        Path expected = v2.resolve(containerPath.formatted(CID));
        Files.createDirectories(expected);
        // a sibling container and another pod that must not be picked
        Files.createDirectories(expected.resolveSibling(expected.getFileName().toString().replace(CID, "f".repeat(64))));
        Files.createDirectories(v2.resolve(containerPath.replace(POD, OTHER_POD).replace(POD.replace('-', '_'), OTHER_POD.replace('-', '_')).formatted("e".repeat(64))));

        Path found = new CgroupLocator(root).locate(POD, Ids.containerId("containerId", "containerd://" + CID));

        assertThat(found).isEqualTo(expected);
    }

    @Test
    void conmonScopeOfCriOIsNotTheContainer() throws IOException {
        Files.writeString(root.resolve("cgroup.controllers"), "");
        Path pod = root.resolve("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + POD.replace('-', '_') + ".slice");
        Files.createDirectories(pod.resolve("crio-conmon-" + CID + ".scope"));
        Path container = Files.createDirectories(pod.resolve("crio-" + CID + ".scope"));

        assertThat(new CgroupLocator(root).locate(POD, Ids.containerId("c", "cri-o://" + CID))).isEqualTo(container);
    }

    @Test
    void v1SystemdHierarchyIsTheFallbackOnHybridNodesWithoutV2Membership() throws IOException {
        Path container = root.resolve("systemd/kubepods/besteffort/pod" + POD + "/" + CID);
        Files.createDirectories(container);

        assertThat(new CgroupLocator(root).locate(POD, Ids.containerId("c", CID))).isEqualTo(container);
    }

    @Test
    void unknownContainerIsReportedNotGuessed() throws IOException {
        Files.writeString(root.resolve("cgroup.controllers"), "");
        Files.createDirectories(root.resolve("kubepods/besteffort/pod" + POD + "/" + "f".repeat(64)));

        assertThatThrownBy(() -> new CgroupLocator(root).locate(POD, Ids.containerId("c", CID)))
                .isInstanceOf(ContainerNotFoundException.class).hasMessageContaining(POD);
    }
}
