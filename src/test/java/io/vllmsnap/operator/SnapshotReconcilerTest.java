package io.vllmsnap.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmSnapshot;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

@QuarkusTest
@WithKubernetesTestServer(crud = true)
class SnapshotReconcilerTest {
    @Inject
    KubernetesClient client;
    @Inject
    FakeNodeAgents agents;

    KubeFixtures kube;
    String ns;

    @BeforeEach
    void setUp() {
        kube = new KubeFixtures(client);
        ns = kube.namespace();
    }

    @Test
    void snapshotOfARunningPodBecomesReadyWithEverythingRecordedAndItsImageIsDeletedWithIt() {
        var agent = agents.on("node-a");
        var pod = kube.sourcePod(ns, "vllm-0", "node-a", "Running");
        var created = kube.snapshot(ns, "snap", "vllm-0");

        VllmSnapshot ready = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Ready);
        var status = ready.getStatus();
        assertThat(status.node).isEqualTo("node-a");
        assertThat(status.podUid).isEqualTo(pod.getMetadata().getUid());
        assertThat(status.imageId).isEqualTo(created.getMetadata().getUid());
        assertThat(status.sizeBytes).isEqualTo(1_900_000_000L);
        assertThat(status.size).isEqualTo("1.8Gi");
        assertThat(status.gpus).containsExactly("NVIDIA H100 80GB HBM3/GPU-1");
        assertThat(status.phaseMillis).containsKeys("prepare", "gpu-checkpoint", "criu-dump", "finalize");
        assertThat(status.totalMillis).isEqualTo(1800L);
        assertThat(status.duration).isEqualTo("1.80s");
        assertThat(status.observedGeneration).isEqualTo(ready.getMetadata().getGeneration());
        assertThat(status.compatibility.gpuModel).isEqualTo("NVIDIA H100 80GB HBM3");
        assertThat(status.compatibility.driverVersion).isEqualTo("580.65.06");
        assertThat(status.compatibility.criuVersion).isEqualTo("4.2.1");
        assertThat(status.compatibility.containerImageDigest).isEqualTo(KubeFixtures.IMAGE_DIGEST);
        assertThat(status.compatibility.vllmArgs).containsExactly("vllm", "serve", "Qwen/Qwen2-1.5B", "--port", "8000");
        Condition readyCondition = condition(ready, Conditions.READY);
        assertThat(readyCondition.getStatus()).isEqualTo("True");
        assertThat(readyCondition.getReason()).isEqualTo("SnapshotReady");
        assertThat(readyCondition.getLastTransitionTime()).isNotBlank();
        assertThat(readyCondition.getObservedGeneration()).isEqualTo(ready.getMetadata().getGeneration());
        assertThat(kube.eventReasons(ns, "snap")).contains("SnapshotReady");

        SnapshotJobRequest request = agent.snapshotRequests.getFirst();
        assertThat(request.jobId()).isEqualTo("snapshot-" + created.getMetadata().getUid());
        assertThat(request.podUid()).isEqualTo(pod.getMetadata().getUid());
        assertThat(request.containerName()).isEqualTo(KubeFixtures.CONTAINER);
        assertThat(request.containerId()).startsWith("containerd://");
        assertThat(request.sleepLevel()).isEqualTo(2);
        assertThat(request.namespace()).isEqualTo(ns);

        // the pod template is recorded for restores, without what binds it to the source node and instance
        var configMap = client.configMaps().inNamespace(ns).withName(status.podTemplateConfigMap).get();
        assertThat(configMap.getMetadata().getOwnerReferences()).singleElement()
                .satisfies(o -> assertThat(o.getUid()).isEqualTo(created.getMetadata().getUid()));
        PodTemplateSpec template = client.getKubernetesSerialization()
                .unmarshal(configMap.getData().get("pod-template.json"), PodTemplateSpec.class);
        assertThat(template.getSpec().getNodeName()).isNull();
        assertThat(template.getSpec().getVolumes()).extracting(v -> v.getName()).containsExactly("shm");
        assertThat(template.getSpec().getContainers().getFirst().getArgs()).contains("Qwen/Qwen2-1.5B");

        client.resource(ready).delete();
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "snap") == null);
        assertThat(agent.deletedImages).contains(ns + "/" + created.getMetadata().getUid());
    }

    private VllmSnapshot awaitSnapshot(String name, Predicate<io.vllmsnap.api.VllmSnapshotStatus> until) {
        return await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, name),
                s -> s != null && s.getStatus() != null && until.test(s.getStatus()));
    }

    private static Condition condition(VllmSnapshot snapshot, String type) {
        return Conditions.find(snapshot.getStatus().conditions, type).orElseThrow();
    }
}
