package io.vllmsnap.operator;

import io.vllmsnap.chart.MetricNames;
import io.vllmsnap.testing.ManagementInterface;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.api.ApiConstants;
import io.vllmsnap.api.Fallback;
import io.vllmsnap.api.RestorePath;
import io.vllmsnap.api.RestorePhase;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.RestorePodStatus;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmRestoreSpec;
import io.vllmsnap.api.VllmRestoreStatus;
import io.vllmsnap.api.VllmSnapshot;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.Map;
import java.util.function.Predicate;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.config.ConfigurationService;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Test;

@QuarkusTest
@WithKubernetesTestServer(crud = true)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RestoreReconcilerTest {
    @Inject
    KubernetesClient client;
    @Inject
    Operator operator;
    @Inject
    ConfigurationService configurationService;
    @Inject
    VllmSnapshotReconciler snapshotReconciler;
    @Inject
    VllmRestoreReconciler restoreReconciler;
    @Inject
    FakeNodeAgents agents;

    KubeFixtures kube;
    String ns;
    String node;

    @BeforeEach
    void setUp() {
        kube = new KubeFixtures(client);
        ns = kube.namespace();
        node = ns + "-node";
    }

    @Test
    void restoresReplicasIntoPlaceholderPodsScalesAndReportsLatencyAndMetrics() {
        var agent = agents.on(node);
        VllmSnapshot snapshot = readySnapshot("snap");
        var spec = new VllmRestoreSpec("snap", 2);
        spec.labels = Map.of("app", "qwen");
        kube.restore(ns, "qwen", spec);

        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "qwen").size() == 2);
        Pod placeholder = kube.restorePods(ns, "qwen").getFirst();
        assertThat(placeholder.getMetadata().getLabels()).containsEntry("app", "qwen")
                .containsEntry(ApiConstants.RESTORE_LABEL, "qwen").containsEntry(ApiConstants.PATH_LABEL, "Restore");
        assertThat(placeholder.getMetadata().getOwnerReferences()).singleElement()
                .satisfies(o -> assertThat(o.getKind()).isEqualTo("VllmRestore"));
        var container = placeholder.getSpec().getContainers().getFirst();
        assertThat(container.getImage()).isEqualTo("vllm/vllm-openai:v0.11.0");
        assertThat(container.getCommand()).containsExactly("sleep", "infinity");
        assertThat(container.getLivenessProbe()).isNull();
        assertThat(placeholder.getSpec().getRestartPolicy()).isEqualTo("Never");
        assertThat(placeholder.getSpec().getVolumes()).extracting(v -> v.getName()).containsExactly("shm");
        assertThat(agent.restoreRequests).isEmpty(); // nothing is restored before the placeholder runs

        kube.runRestorePods(ns, "qwen", node);
        VllmRestore ready = awaitRestore("qwen", s -> s.phase == RestorePhase.Ready);
        VllmRestoreStatus status = ready.getStatus();
        assertThat(status.replicas).isEqualTo(2);
        assertThat(status.readyReplicas).isEqualTo(2);
        assertThat(status.selector).isEqualTo(ApiConstants.RESTORE_LABEL + "=qwen");
        assertThat(status.snapshotImageId).isEqualTo(snapshot.getStatus().imageId);
        assertThat(status.lastRestoreLatency).isEqualTo("3.20s");
        assertThat(status.pods).hasSize(2).allSatisfy(p -> {
            assertThat(p.path).isEqualTo(RestorePath.Restore);
            assertThat(p.phase).isEqualTo(RestorePodPhase.Ready);
            assertThat(p.node).isEqualTo(node);
            assertThat(p.totalMillis).isEqualTo(3200L);
            assertThat(p.phaseMillis).containsKeys("stage", "criu-restore", "gpu-restore", "wake", "ready");
        });
        assertThat(condition(ready, Conditions.READY).getReason()).isEqualTo("AllReplicasReady");
        assertThat(kube.eventReasons(ns, "qwen")).contains("PodsCreated", "Restored", "Ready");
        var request = agent.restoreRequests.getFirst();
        assertThat(request.imageId()).isEqualTo(snapshot.getStatus().imageId);
        assertThat(request.expected().gpuModel()).isEqualTo("NVIDIA H100 80GB HBM3");
        assertThat(request.expected().containerImageDigest()).isEqualTo(KubeFixtures.IMAGE_DIGEST);
        assertThat(request.containerId()).startsWith("containerd://");

        // scale subresource: kubectl scale / HPA
        client.resources(VllmRestore.class).inNamespace(ns).withName("qwen").scale(3);
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "qwen").size() == 3);
        kube.runRestorePods(ns, "qwen", node);
        awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 3);
        assertThat(client.resources(VllmRestore.class).inNamespace(ns).withName("qwen").scale().getStatus().getReplicas())
                .isEqualTo(3);

        client.resources(VllmRestore.class).inNamespace(ns).withName("qwen").scale(1);
        VllmRestore scaledDown = awaitRestore("qwen", s -> s.replicas == 1 && s.phase == RestorePhase.Ready);
        assertThat(kube.restorePods(ns, "qwen")).hasSize(1);
        assertThat(scaledDown.getStatus().readyReplicas).isEqualTo(1);
        assertThat(kube.eventReasons(ns, "qwen")).contains("ScaledDown");

        ManagementInterface.given().get("/q/health/ready").then().statusCode(200);
        ManagementInterface.given().get("/q/health/live").then().statusCode(200);
        String metrics = ManagementInterface.given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertThat(metrics)
                .contains("vllmsnap_restore_duration_seconds_bucket{")
                .containsPattern("vllmsnap_restore_duration_seconds_count\\{phase=\"total\",result=\"success\"} [0-9.]+")
                .containsPattern("vllmsnap_restore_duration_seconds_count\\{phase=\"criu-restore\",result=\"success\"}")
                .containsPattern("vllmsnap_restores_total\\{path=\"Restore\",result=\"success\"} [0-9.]+")
                .contains("vllmsnap_snapshot_duration_seconds_bucket{")
                .contains("vllmsnap_snapshot_size_bytes_count")
                .containsPattern("vllmsnap_snapshots_total\\{result=\"success\"}")
                .contains("operator_sdk_reconciliations");
        // every operator series the dashboard and alerts may read is really exported
        assertThat(MetricNames.fromScrape(metrics)).containsAll(MetricNames.expectedExports().stream()
                .filter(name -> !name.startsWith(MetricNames.AGENT_PREFIX)).toList());
    }

    @Test
    void replicasChangedWhileRestoresRunDeletesPodsNotYetServing() {
        var agent = agents.on(node);
        readySnapshot("snap");
        agent.finishJobsOnPoll = false;
        kube.restore(ns, "busy", "snap", 3);
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "busy").size() == 3);
        kube.runRestorePods(ns, "busy", node);
        awaitRestore("busy", s -> s.pods.stream().filter(p -> p.phase == RestorePodPhase.Restoring).count() == 3);
        String first = agent.restoreRequests.getFirst().jobId();
        agent.succeed(first);
        awaitRestore("busy", s -> s.readyReplicas == 1);

        client.resources(VllmRestore.class).inNamespace(ns).withName("busy").scale(1);
        VllmRestore scaled = awaitRestore("busy", s -> s.replicas == 1);
        assertThat(scaled.getStatus().pods).singleElement()
                .satisfies(p -> assertThat(VllmRestoreReconciler.jobId(p.uid)).isEqualTo(first))
                .satisfies(p -> assertThat(p.phase).isEqualTo(RestorePodPhase.Ready));
        assertThat(condition(scaled, Conditions.READY).getMessage()).isEqualTo("1/1 replicas ready");
        assertThat(kube.eventReasons(ns, "busy")).contains("ScaledDown");
    }

    @Test
    void badSnapshotReferencesEndInAClearConditionAndAnEvent() {
        agents.on(node);
        String other = kube.namespace();
        kube.sourcePod(other, "vllm-0", node, "Running");
        kube.snapshot(other, "elsewhere", "vllm-0");

        kube.restore(ns, "missing", "no-such-snapshot", 1);
        kube.restore(ns, "cross-namespace", "elsewhere", 1);
        kube.restore(ns, "qualified", other + "/elsewhere", 1);
        expect("missing", RestorePhase.Pending, "SnapshotNotFound", "VllmSnapshot 'no-such-snapshot' not found");
        expect("cross-namespace", RestorePhase.Pending, "SnapshotNotFound", "only use snapshots of its own namespace");
        expect("qualified", RestorePhase.Failed, "SnapshotInOtherNamespace", "names another namespace");

        var held = agents.on(ns + "-held");
        held.finishJobsOnPoll = false;
        kube.sourcePod(ns, "held-pod", ns + "-held", "Running");
        var inProgress = kube.snapshot(ns, "in-progress", "held-pod");
        // the restore must meet the snapshot already in progress (not still without status), for the message below
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "in-progress"),
                s -> s.getStatus() != null && s.getStatus().phase == SnapshotPhase.InProgress);
        kube.restore(ns, "early", "in-progress", 1);
        expect("early", RestorePhase.Pending, "SnapshotNotReady", "to be Ready (now InProgress)");

        kube.snapshot(ns, "broken", "no-such-pod");
        kube.restore(ns, "from-broken", "broken", 1);
        expect("from-broken", RestorePhase.Failed, "SnapshotFailed", "PodNotFound");
        assertThat(kube.restorePods(ns, "early")).isEmpty();
        assertThat(kube.restorePods(ns, "from-broken")).isEmpty();

        // the snapshot finishes: the waiting restore goes on by itself
        held.succeed(VllmSnapshotReconciler.jobId(inProgress));
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "early").size() == 1);
    }

    @Test
    void failingRestoresAreReplacedWithBackoffAndReportDegraded() {
        var agent = agents.on(node);
        readySnapshot("snap");
        agent.failRestoresWith = "CriuRestoreFailed";
        var spec = new VllmRestoreSpec("snap", 1);
        spec.failureThreshold = 2;
        kube.restore(ns, "flaky", spec);

        java.util.Set<String> seenPods = new java.util.HashSet<>();
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            kube.runRestorePods(ns, "flaky", node).forEach(p -> seenPods.add(p.getMetadata().getName()));
            VllmRestore r = kube.getRestore(ns, "flaky");
            return r.getStatus() != null && r.getStatus().phase == RestorePhase.Degraded;
        });
        VllmRestore degraded = kube.getRestore(ns, "flaky");
        assertThat(seenPods).hasSizeGreaterThanOrEqualTo(2); // a failed pod is replaced by a new one, never reused
        assertThat(degraded.getStatus().consecutiveFailures).isGreaterThanOrEqualTo(2);
        Condition condition = condition(degraded, Conditions.DEGRADED);
        assertThat(condition.getStatus()).isEqualTo("True");
        assertThat(condition.getReason()).isEqualTo("RestoresFailing");
        assertThat(condition.getMessage()).contains("CriuRestoreFailed", "criu: restore failed");
        assertThat(kube.eventReasons(ns, "flaky")).contains("CriuRestoreFailed", "RestoresFailing");

        // the node recovers: the next replacement restores, and Degraded clears
        agent.failRestoresWith = null;
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            kube.runRestorePods(ns, "flaky", node);
            VllmRestore r = kube.getRestore(ns, "flaky");
            return r.getStatus().phase == RestorePhase.Ready;
        });
        VllmRestore healed = kube.getRestore(ns, "flaky");
        assertThat(healed.getStatus().consecutiveFailures).isZero();
        assertThat(condition(healed, Conditions.DEGRADED).getStatus()).isEqualTo("False");
    }

    @Test
    void coldStartFallbackBringsCapacityWhenTheTargetNodeIsIncompatible() {
        agents.on(node);
        readySnapshot("snap");
        String otherGpuNode = ns + "-a100";
        agents.on(otherGpuNode).gpuModel = "NVIDIA A100-SXM4-80GB";
        var spec = new VllmRestoreSpec("snap", 1);
        spec.fallback = Fallback.ColdStart;
        kube.restore(ns, "fallback", spec);

        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "fallback").size() == 1);
        kube.runRestorePods(ns, "fallback", otherGpuNode);
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "fallback").stream()
                .anyMatch(p -> "ColdStart".equals(p.getMetadata().getLabels().get(ApiConstants.PATH_LABEL))));
        assertThat(agents.on(otherGpuNode).restoreRequests).isEmpty(); // refused before moving a byte
        assertThat(kube.eventReasons(ns, "fallback")).contains("IncompatibleNode", "ColdStartFallback");

        Pod cold = kube.restorePods(ns, "fallback").stream()
                .filter(p -> "ColdStart".equals(p.getMetadata().getLabels().get(ApiConstants.PATH_LABEL))).findFirst().orElseThrow();
        assertThat(cold.getSpec().getContainers().getFirst().getCommand()).containsExactly("vllm", "serve");
        assertThat(cold.getSpec().getContainers().getFirst().getLivenessProbe()).isNotNull();
        Pod scheduled = client.pods().inNamespace(ns).withName(cold.getMetadata().getName())
                .edit(p -> {
                    p.getSpec().setNodeName(otherGpuNode);
                    return p;
                });
        kube.setPhase(scheduled, "Running", true);

        VllmRestore ready = awaitRestore("fallback", s -> s.phase == RestorePhase.Ready);
        RestorePodStatus pod = ready.getStatus().pods.getFirst();
        assertThat(pod.path).isEqualTo(RestorePath.ColdStart);
        assertThat(pod.phase).isEqualTo(RestorePodPhase.Ready);
        assertThat(pod.reason).isEqualTo("FallbackAfterFailedRestore");
        assertThat(pod.message).contains("IncompatibleNode");
        assertThat(ready.getStatus().readyReplicas).isEqualTo(1);
    }

    @Test
    void anUnreachableAgentKeepsThePodWaitingWithAReasonUntilItAnswers() {
        var agent = agents.on(node);
        readySnapshot("snap");
        agent.unreachable = true;
        kube.restore(ns, "patient", "snap", 1);
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "patient").size() == 1);
        String podName = kube.runRestorePods(ns, "patient", node).getFirst().getMetadata().getName();

        VllmRestore waiting = awaitRestore("patient",
                s -> !s.pods.isEmpty() && "AgentUnreachable".equals(s.pods.getFirst().reason));
        assertThat(waiting.getStatus().pods.getFirst().phase).isEqualTo(RestorePodPhase.Pending);
        assertThat(waiting.getStatus().pods.getFirst().message).contains("could not be reached", "connection refused");
        assertThat(kube.eventReasons(ns, "patient")).contains("AgentUnreachable");

        agent.unreachable = false;
        VllmRestore ready = awaitRestore("patient", s -> s.phase == RestorePhase.Ready);
        assertThat(ready.getStatus().pods).singleElement().satisfies(p -> {
            assertThat(p.name).isEqualTo(podName); // the same pod, not a replacement
            assertThat(p.reason).isNull();
        });
    }

    /**
     * Runs last: it stops the operator the application started and runs the same reconcilers in a new one, as a restarted
     * operator pod would. Jobs in flight then are followed to the end, not started again.
     */
    @Test
    @Order(Integer.MAX_VALUE)
    void anOperatorRestartedMidJobPicksUpWhereItWas() {
        var agent = agents.on(node);
        readySnapshot("snap");
        agent.finishJobsOnPoll = false;
        kube.restore(ns, "restarting", "snap", 1);
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.restorePods(ns, "restarting").size() == 1);
        kube.runRestorePods(ns, "restarting", node);
        awaitRestore("restarting", s -> !s.pods.isEmpty() && s.pods.getFirst().phase == RestorePodPhase.Restoring);

        String heldNode = ns + "-held";
        var held = agents.on(heldNode);
        held.finishJobsOnPoll = false;
        kube.sourcePod(ns, "vllm-held", heldNode, "Running");
        VllmSnapshot midJob = kube.snapshot(ns, "mid-job", "vllm-held");
        await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "mid-job").getStatus(),
                s -> s != null && s.phase == SnapshotPhase.InProgress);

        operator.stop();
        // while no operator runs, both jobs finish on their nodes
        agent.succeed(agent.restoreRequests.getFirst().jobId());
        held.succeed(VllmSnapshotReconciler.jobId(midJob));

        Operator restarted = new Operator(configurationService);
        restarted.register(snapshotReconciler);
        restarted.register(restoreReconciler);
        restarted.start();
        try {
            VllmRestore ready = awaitRestore("restarting", s -> s.phase == RestorePhase.Ready);
            assertThat(ready.getStatus().readyReplicas).isEqualTo(1);
            assertThat(kube.restorePods(ns, "restarting")).hasSize(1);
            assertThat(agent.restoreRequests).hasSize(1); // followed, not started again
            await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, "mid-job").getStatus().phase,
                    phase -> phase == SnapshotPhase.Ready);
            assertThat(held.snapshotRequests).hasSize(1);
        } finally {
            restarted.stop();
        }
    }

    private VllmSnapshot readySnapshot(String name) {
        kube.sourcePod(ns, name + "-source", node, "Running");
        kube.snapshot(ns, name, name + "-source");
        return await().atMost(Duration.ofSeconds(20)).until(() -> kube.getSnapshot(ns, name),
                s -> s != null && s.getStatus() != null && s.getStatus().phase == SnapshotPhase.Ready);
    }

    private void expect(String restore, RestorePhase phase, String reason, String messagePart) {
        VllmRestore r = awaitRestore(restore, s -> s.phase == phase && Conditions.find(s.conditions, Conditions.SNAPSHOT_READY)
                .map(c -> reason.equals(c.getReason())).orElse(false));
        assertThat(condition(r, Conditions.SNAPSHOT_READY).getMessage()).contains(messagePart);
        assertThat(kube.eventReasons(ns, restore)).contains(reason);
    }

    private VllmRestore awaitRestore(String name, Predicate<VllmRestoreStatus> until) {
        return await().atMost(Duration.ofSeconds(20)).until(() -> kube.getRestore(ns, name),
                r -> r != null && r.getStatus() != null && until.test(r.getStatus()));
    }

    private static Condition condition(VllmRestore restore, String type) {
        return Conditions.find(restore.getStatus().conditions, type).orElseThrow();
    }
}
