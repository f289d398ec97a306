package io.vllmsnap.operator;

import static org.assertj.core.api.Assertions.assertThat;

import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.api.CompatibilityInfo;
import java.util.List;
import org.junit.jupiter.api.Test;

class OperatorChecksTest {

    private static CompatibilityInfo recorded() {
        CompatibilityInfo info = new CompatibilityInfo();
        info.gpuModel = "NVIDIA H100 80GB HBM3";
        info.driverVersion = "580.65.06";
        info.criuVersion = "4.2.1";
        info.containerImageDigest = "sha256:aaa";
        info.vllmArgs = List.of("vllm", "serve");
        return info;
    }

    private static NodeCapabilities node(String gpuModel, String driver, String criu) {
        return new NodeCapabilities("n1", "1", criu, driver, List.of(new NodeCapabilities.GpuInfo("GPU-1", gpuModel, 1L << 30)),
                false, false, 0, 1, 0);
    }

    @Test
    void aMatchingNodeHasNoMismatch() {
        assertThat(Compatibility.mismatches(recorded(), node("NVIDIA H100 80GB HBM3", "580.65.06", "4.2.1"), "sha256:aaa"))
                .isEmpty();
    }

    @Test
    void everyDifferenceIsNamedWithBothValues() {
        List<String> problems = Compatibility.mismatches(recorded(), node("NVIDIA A100-SXM4-80GB", "550.54.15", "4.1"),
                "sha256:bbb");
        assertThat(problems).containsExactly(
                "GPU model NVIDIA H100 80GB HBM3 recorded, node has [NVIDIA A100-SXM4-80GB]",
                "driver version 580.65.06 recorded, node has 550.54.15",
                "CRIU version 4.2.1 recorded, node has 4.1",
                "container image digest sha256:aaa recorded, node has sha256:bbb");
    }

    @Test
    void aNodeWithoutGpuCannotTakeAGpuSnapshot() {
        var cpuOnly = new NodeCapabilities("n1", "1", "4.2.1", "580.65.06", List.of(), false, false, 0, 1, 0);
        assertThat(Compatibility.mismatches(recorded(), cpuOnly, null))
                .containsExactly("GPU model NVIDIA H100 80GB HBM3 recorded, node has no GPU");
    }

    @Test
    void digestIsTakenFromTheRuntimeImageId() {
        assertThat(VllmSnapshotReconciler.digestOf("docker-pullable://vllm/vllm-openai@sha256:abc")).isEqualTo("sha256:abc");
        assertThat(VllmSnapshotReconciler.digestOf("sha256:abc")).isEqualTo("sha256:abc");
        assertThat(VllmSnapshotReconciler.digestOf(null)).isNull();
    }

    @Test
    void backoffDoublesUpToItsCap() {
        var base = java.time.Duration.ofSeconds(2);
        var max = java.time.Duration.ofMinutes(5);
        assertThat(Backoff.after(1, base, max)).hasSeconds(2);
        assertThat(Backoff.after(2, base, max)).hasSeconds(4);
        assertThat(Backoff.after(4, base, max)).hasSeconds(16);
        assertThat(Backoff.after(30, base, max)).isEqualTo(max);
    }

    @Test
    void aSourceWithoutShmEmptyDirIsWarnedAboutAndAWellShapedOneIsNot() {
        var bare = new io.fabric8.kubernetes.api.model.PodSpecBuilder()
                .addNewContainer().withName("vllm").endContainer().build();
        assertThat(SourcePodChecks.warnings(bare, bare.getContainers().getFirst())).hasSize(3)
                .anySatisfy(w -> assertThat(w).startsWith("/dev/shm is not an emptyDir"));

        var shaped = new io.fabric8.kubernetes.api.model.PodSpecBuilder()
                .addNewContainer().withName("vllm")
                .addNewEnv().withName("VLLM_WORKER_MULTIPROC_METHOD").withValue("spawn").endEnv()
                .addNewEnv().withName("HF_HUB_OFFLINE").withValue("1").endEnv()
                .addNewVolumeMount().withName("shm").withMountPath("/dev/shm").endVolumeMount()
                .endContainer()
                .addNewVolume().withName("shm").withNewEmptyDir().withMedium("Memory").endEmptyDir().endVolume()
                .build();
        assertThat(SourcePodChecks.warnings(shaped, shaped.getContainers().getFirst())).isEmpty();
    }
}
