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
import io.vllmsnap.api.SourceRef;
import io.vllmsnap.api.VllmSnapshotSpec;
import io.vllmsnap.api.VllmSnapshot;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
    /** Each test has its own node (and so its own fake agent), as it has its own namespace. */
    String node;

    @BeforeEach
    void setUp() {
        kube = new KubeFixtures(client);
        ns = kube.namespace();
        node = ns + "-node";
    }

    @Test
    void snapshotOfARunningPodBecomesReadyWithEverythingRecordedAndItsImageIsDeletedWithIt() {
        var agent = agents.on(node);
        var pod = kube.sourcePod(ns, "vllm-0", node, "Running");
        var created = kube.snapshot(ns, "snap", "vllm-0");

        VllmSnapshot ready = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Ready);
        var status = ready.getStatus();
        assertThat(status.node).isEqualTo(node);
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
        assertThat(kube.eventReasons(ns, "snap")).contains("SnapshotReady", "SourceShapeWarnings");
        // the fixture pod mounts an emptyDir at /dev/shm but sets neither variable: warned, not refused
        Condition shape = condition(ready, Conditions.SOURCE_CHECKED);
        assertThat(shape.getStatus()).isEqualTo("False");
        assertThat(shape.getMessage()).contains("VLLM_WORKER_MULTIPROC_METHOD", "HF_HUB_OFFLINE").doesNotContain("/dev/shm");

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

    @Test
    void badSourcesEndInAClearConditionAndAnEvent() {
        agents.on(node);
        kube.sourcePod(ns, "starting", node, "Pending");
        kube.sourcePod(ns, "done", node, "Succeeded");
        kube.sourcePod(ns, "running", node, "Running");
        kube.sourcePod(ns, "agentless", "node-without-agent", "Running");

        kube.snapshot(ns, "missing-pod", "no-such-pod");
        kube.snapshot(ns, "not-running", "starting");
        kube.snapshot(ns, "terminated", "done");
        var wrongContainer = new VllmSnapshot();
        wrongContainer.getMetadata().setName("wrong-container");
        wrongContainer.getMetadata().setNamespace(ns);
        wrongContainer.setSpec(new VllmSnapshotSpec(new SourceRef("running", "sidecar"), 0));
        client.resource(wrongContainer).create();
        kube.snapshot(ns, "no-agent", "agentless");

        expectCondition("missing-pod", SnapshotPhase.Failed, "PodNotFound", "pod 'no-such-pod' not found");
        expectCondition("not-running", SnapshotPhase.Pending, "PodNotRunning", "to be Running (phase Pending)");
        expectCondition("terminated", SnapshotPhase.Failed, "PodNotRunning", "has terminated (phase Succeeded)");
        expectCondition("wrong-container", SnapshotPhase.Failed, "ContainerNotFound", "no container 'sidecar' (containers: vllm)");
        expectCondition("no-agent", SnapshotPhase.Pending, "NoAgentOnNode",
                "node 'node-without-agent' of pod 'agentless' runs no vllmsnap agent");
        assertThat(agents.on(node).snapshotRequests).isEmpty();

        // the pod waited for turns out to be another instance than the one first seen (the status recorded another UID,
        // as after a delete and re-create under the same name), now on a node with an agent: refused.
        client.resources(VllmSnapshot.class).inNamespace(ns).withName("no-agent").editStatus(s -> {
            s.getStatus().podUid = "11111111-2222-3333-4444-555555555555";
            return s;
        });
        client.pods().inNamespace(ns).withName("agentless").edit(p -> {
            p.getSpec().setNodeName(node);
            return p;
        });
        expectCondition("no-agent", SnapshotPhase.Failed, "SourcePodReplaced", "was recreated");
        assertThat(agents.on(node).snapshotRequests).isEmpty();
    }

    @Test
    void anUnreachableAgentKeepsTheFinalizerWithAConditionAndRetriesUntilTheImageIsDeleted() {
        var agent = agents.on(node);
        kube.sourcePod(ns, "vllm-0", node, "Running");
        kube.snapshot(ns, "snap", "vllm-0");
        VllmSnapshot ready = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Ready);

        agent.unreachable = true;
        client.resource(ready).delete();
        VllmSnapshot stuck = awaitSnapshot("snap", s -> s.agentRetries != null && s.agentRetries >= 2);
        assertThat(stuck.getStatus().phase).isEqualTo(SnapshotPhase.Deleting);
        Condition reachable = condition(stuck, Conditions.AGENT_REACHABLE);
        assertThat(reachable.getStatus()).isEqualTo("False");
        assertThat(reachable.getReason()).isEqualTo("AgentUnreachable");
        assertThat(reachable.getMessage()).contains("cannot delete image", "finalizer stays", "connection refused");
        assertThat(kube.eventReasons(ns, "snap")).contains("ImageDeletePending");
        assertThat(agent.deletedImages).isEmpty();

        agent.unreachable = false;
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "snap") == null);
        assertThat(agent.deletedImages).containsExactly(ns + "/" + ready.getMetadata().getUid());
    }

    @Test
    void aSnapshotDeletedMidJobKeepsItsFinalizerUntilTheJobEndsThenDeletesTheImage() {
        var agent = agents.on(node);
        agent.finishJobsOnPoll = false;
        kube.sourcePod(ns, "vllm-0", node, "Running");
        var created = kube.snapshot(ns, "snap", "vllm-0");
        VllmSnapshot running = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.InProgress);
        assertThat(condition(running, Conditions.READY).getReason()).isEqualTo("SnapshotInProgress");
        assertThat(running.getStatus().jobPhase).isEqualTo("criu-dump");

        client.resource(running).delete();
        VllmSnapshot deleting = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Deleting);
        assertThat(condition(deleting, Conditions.READY).getReason()).isEqualTo("DeletingAfterJob");
        assertThat(kube.eventReasons(ns, "snap")).contains("DeletingAfterJob");
        assertThat(agent.deletedImages).isEmpty();

        agent.succeed(VllmSnapshotReconciler.jobId(created));
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "snap") == null);
        assertThat(agent.deletedImages).containsExactly(ns + "/" + created.getMetadata().getUid());
    }

    @Test
    void aSnapshotInUseByARestoreIsKeptUntilTheRestoreIsGone() {
        var agent = agents.on(node);
        kube.sourcePod(ns, "vllm-0", node, "Running");
        kube.snapshot(ns, "snap", "vllm-0");
        VllmSnapshot ready = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Ready);
        var restore = kube.restore(ns, "users", "snap", 0);

        client.resource(ready).delete();
        VllmSnapshot kept = awaitSnapshot("snap", s -> s.phase == SnapshotPhase.Deleting);
        Condition inUse = condition(kept, Conditions.IN_USE);
        assertThat(inUse.getReason()).isEqualTo("InUseByRestores");
        assertThat(inUse.getMessage()).contains("VllmRestore users");
        assertThat(kube.eventReasons(ns, "snap")).contains("DeletionDeferred");
        assertThat(agent.deletedImages).isEmpty();

        client.resource(restore).delete();
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "snap") == null);
        assertThat(agent.deletedImages).containsExactly(ns + "/" + ready.getMetadata().getUid());
    }

    private void expectCondition(String snapshot, SnapshotPhase phase, String reason, String messagePart) {
        VllmSnapshot s = awaitSnapshot(snapshot, st -> st.phase == phase
                && Conditions.find(st.conditions, Conditions.READY).map(c -> reason.equals(c.getReason())).orElse(false));
        assertThat(condition(s, Conditions.READY).getMessage()).contains(messagePart);
        assertThat(condition(s, Conditions.READY).getStatus()).isEqualTo("False");
        assertThat(kube.eventReasons(ns, snapshot)).contains(reason);
    }

    /** The build (run by this Quarkus test) generates the CRDs from the API model; the committed ones must equal them. */
    /**
     * The running operator (not a unit under test): it creates the agent DaemonSet from the chart's ConfigMap as soon as
     * the ConfigMap appears, and labels the node of a ready agent pod with what the agent can do.
     */
    @Test
    void theRunningOperatorKeepsTheAgentDaemonSetAndLabelsNodesWithReadyAgents() {
        String agentNs = "vllmsnap-system"; // vllmsnap.daemonset.namespace in the test profile (no POD_NAMESPACE)
        if (client.namespaces().withName(agentNs).get() == null) {
            client.namespaces().resource(new io.fabric8.kubernetes.api.model.NamespaceBuilder().withNewMetadata()
                    .withName(agentNs).endMetadata().build()).create();
        }
        client.configMaps().inNamespace(agentNs).resource(new io.fabric8.kubernetes.api.model.ConfigMapBuilder()
                .withNewMetadata().withName("vllmsnap-agent-daemonset").withNamespace(agentNs).endMetadata()
                .addToData(AgentDaemonSetKeeper.DESIRED_KEY, AgentDaemonSetKeeperTest.DESIRED).build()).create();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(
                client.apps().daemonSets().inNamespace(agentNs).withName("vllmsnap-agent").get()).isNotNull());

        client.nodes().resource(new io.fabric8.kubernetes.api.model.NodeBuilder().withNewMetadata().withName(node)
                .endMetadata().build()).create();
        agents.on(node);
        var agentPod = client.pods().inNamespace(agentNs).resource(new io.fabric8.kubernetes.api.model.PodBuilder()
                .withNewMetadata().withName("agent-" + node).withNamespace(agentNs)
                .addToLabels("app.kubernetes.io/name", "vllmsnap").addToLabels("app.kubernetes.io/component", "agent")
                .endMetadata().withNewSpec().withNodeName(node).addNewContainer().withName("agent").withImage("agent")
                .endContainer().endSpec().build()).create();
        kube.setPhase(agentPod, "Running", true);
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(client.nodes().withName(node).get()
                .getMetadata().getLabels()).containsEntry(NodeAgentReporter.READY_LABEL, "true")
                .containsEntry(NodeAgentReporter.CRIU_LABEL, "4.2.1"));

        client.pods().inNamespace(agentNs).withName("agent-" + node).withGracePeriod(0).delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(client.nodes().withName(node).get()
                .getMetadata().getLabels()).containsEntry(NodeAgentReporter.READY_LABEL, "false")
                .doesNotContainKey(NodeAgentReporter.CRIU_LABEL));
    }

    @Test
    void committedCrdsEqualTheOnesGeneratedFromTheApiModel() throws Exception {
        for (String crd : List.of("vllmsnapshots.vllmsnap.io-v1.yml", "vllmrestores.vllmsnap.io-v1.yml")) {
            Path generated = Path.of("target", "kubernetes", crd);
            Path committed = Path.of("crds", crd);
            assertThat(generated).exists();
            assertThat(Files.readString(committed))
                    .as("crds/%s differs from the generated CRD: cp target/kubernetes/%s crds/", crd, crd)
                    .isEqualTo(Files.readString(generated));
        }
    }

    private VllmSnapshot awaitSnapshot(String name, Predicate<io.vllmsnap.api.VllmSnapshotStatus> until) {
        return await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, name),
                s -> s != null && s.getStatus() != null && until.test(s.getStatus()));
    }

    private static Condition condition(VllmSnapshot snapshot, String type) {
        return Conditions.find(snapshot.getStatus().conditions, type).orElseThrow();
    }
}
