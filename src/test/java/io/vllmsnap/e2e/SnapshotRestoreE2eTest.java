package io.vllmsnap.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.container.EmulatedNode;
import io.vllmsnap.api.RestorePhase;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.operator.Conditions;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The user's flow on an emulated cluster: the mock API server, the real operator, real agents with real CRIU, and the
 * kubelet emulator running pods as emulated containers. Root required.
 */
@QuarkusTest
@TestProfile(E2eProfile.class)
@WithKubernetesTestServer(crud = true)
class SnapshotRestoreE2eTest {
    static final Duration SNAPSHOT_TIMEOUT = Duration.ofSeconds(90);
    static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(120);

    @Inject
    KubernetesClient client;
    @Inject
    E2eNodeAgents agents;

    EmulatedCluster cluster;

    @AfterEach
    void tearDown() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void snapshotThenRestoreOneThenThreeReplicasThenScaleDownAndUp() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 2, false);
        cluster.sourcePod("vllm-0", "node-a");
        EmulatedNode.Pod source = cluster.container("vllm-0");
        EmulatedNode.complete(source, "warm up the cache");
        EmulatedNode.complete(source, "and once more");
        JsonNode atSnapshot = EmulatedNode.get(source, "/state");

        cluster.snapshot("warm", "vllm-0", 0);
        VllmSnapshot snapshot = cluster.awaitSnapshot("warm", s -> s.phase != null && s.phase.isTerminal(), SNAPSHOT_TIMEOUT);
        assertThat(snapshot.getStatus().phase).as(conditions(snapshot)).isEqualTo(SnapshotPhase.Ready);
        assertThat(snapshot.getStatus().node).isEqualTo("node-a");
        assertThat(snapshot.getStatus().sizeBytes).isPositive();
        assertThat(snapshot.getStatus().phaseMillis).containsKeys("discover", "criu-dump", "finalize");
        assertThat(cluster.images("node-a")).hasSize(1);
        // the source was left running and still holds the state it was snapshotted with
        assertThat(EmulatedNode.get(source, "/state").get("counter")).isEqualTo(atSnapshot.get("counter"));
        // every copy serves the restore's first-token request before it counts as restored; the source gets the same
        // request once, and from then on a copy and the source hold the same state
        EmulatedNode.firstTokenProbe(source);
        JsonNode asRestored = EmulatedNode.get(source, "/state");
        assertThat(asRestored.get("counter").asInt()).isEqualTo(atSnapshot.get("counter").asInt() + 1);

        cluster.restore("qwen", "warm", 1);
        VllmRestore one = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 1, RESTORE_TIMEOUT);
        assertThat(one.getStatus().pods).singleElement().satisfies(p -> {
            assertThat(p.node).isEqualTo("node-a");
            assertThat(p.phaseMillis).containsKeys("criu-restore", "ready", "first-token");
            assertThat(p.totalMillis).isGreaterThanOrEqualTo(p.phaseMillis.get("first-token")).isPositive();
        });
        assertThat(one.getStatus().lastRestoreLatency).isNotBlank();
        // the first answer of a copy (after the restore's own first token) is the answer the source gives next: same
        // weights, KV pool, kernels and counter
        String expected = digestOfNextAnswer(cluster.container(one.getStatus().pods.getFirst().name));

        cluster.scale("qwen", 3);
        VllmRestore three = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 3
                && s.replicas == 3, RESTORE_TIMEOUT);
        List<String> names = three.getStatus().pods.stream().map(p -> p.name).toList();
        assertThat(names).hasSize(3).contains(one.getStatus().pods.getFirst().name);
        // the two new copies (the status does not promise an order; the first copy has answered once already)
        for (String pod : names.stream().filter(n -> !n.equals(one.getStatus().pods.getFirst().name)).toList()) {
            assertThat(cluster.state(pod).get("counter")).isEqualTo(asRestored.get("counter"));
            assertThat(cluster.state(pod).get("kv_sha256")).isEqualTo(asRestored.get("kv_sha256"));
            assertThat(cluster.state(pod).get("weights_sha256")).isEqualTo(atSnapshot.get("weights_sha256"));
            assertThat(digestOfNextAnswer(cluster.container(pod))).as("first answer of %s", pod).isEqualTo(expected);
        }
        for (Pod pod : cluster.restorePods("qwen")) {
            assertThat(pod.getStatus().getPodIP()).isEqualTo(cluster.container(pod.getMetadata().getName()).address());
            assertThat(pod.getStatus().getConditions()).anySatisfy(c -> {
                assertThat(c.getType()).isEqualTo("Ready");
                assertThat(c.getStatus()).isEqualTo("True");
            });
        }
        writeStatus("restore-status.yaml", cluster.getRestore("qwen"));
        writeStatus("snapshot-status.yaml", cluster.getSnapshot("warm"));
        Files.writeString(EmulatedCluster.WORK.resolve("restore-events.txt"), client.v1().events().inNamespace(cluster.namespace)
                .list().getItems().stream().map(e -> e.getType() + "\t" + e.getReason() + "\t" + e.getInvolvedObject().getKind()
                        + "/" + e.getInvolvedObject().getName() + "\t" + e.getMessage()).collect(Collectors.joining("\n")));

        // kubectl scale --replicas=1: two pods go, their containers are killed, the one left keeps serving
        cluster.scale("qwen", 1);
        VllmRestore down = cluster.awaitRestore("qwen", s -> s.replicas == 1 && s.readyReplicas == 1
                && s.phase == RestorePhase.Ready, RESTORE_TIMEOUT);
        String kept = down.getStatus().pods.getFirst().name;
        assertThat(cluster.restorePods("qwen")).extracting(p -> p.getMetadata().getName()).containsExactly(kept);
        await().atMost(Duration.ofSeconds(10)).until(() -> cluster.kubelet.runningPods().equals(Set.of("vllm-0", kept)));
        assertThat(EmulatedNode.answers(cluster.container(kept))).isTrue();

        // and up again to 2: the new copy again starts from the snapshot's state
        cluster.scale("qwen", 2);
        VllmRestore up = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 2, RESTORE_TIMEOUT);
        String added = up.getStatus().pods.stream().map(p -> p.name).filter(n -> !n.equals(kept)).findFirst().orElseThrow();
        assertThat(digestOfNextAnswer(cluster.container(added))).isEqualTo(expected);
        assertThat(Conditions.find(up.getStatus().conditions, Conditions.READY).orElseThrow().getReason()).isEqualTo("AllReplicasReady");

        // the source served all along, and its next answer is the one every copy gave first
        assertThat(digestOfNextAnswer(source)).isEqualTo(expected);
        assertThat(cluster.images("node-a")).hasSize(1);
    }

    @Test
    void aSnapshotAtSleepLevelOneRestoresAnAwakeCopyWithTheSameState() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 2, false);
        cluster.sourcePod("vllm-0", "node-a");
        EmulatedNode.Pod source = cluster.container("vllm-0");
        EmulatedNode.complete(source, "warm up");
        int counter = EmulatedNode.get(source, "/state").get("counter").asInt();

        cluster.snapshot("asleep", "vllm-0", 1);
        VllmSnapshot snapshot = cluster.awaitSnapshot("asleep", s -> s.phase != null && s.phase.isTerminal(), SNAPSHOT_TIMEOUT);
        assertThat(snapshot.getStatus().phase).as(conditions(snapshot)).isEqualTo(SnapshotPhase.Ready);
        assertThat(snapshot.getStatus().phaseMillis).containsKeys("prepare", "criu-dump");
        // the source was put to sleep for the dump (KV cache dropped) and woken again: it serves
        assertThat(EmulatedNode.get(source, "/is_sleeping").get("is_sleeping").asBoolean()).isFalse();

        cluster.restore("awake", "asleep", 1);
        VllmRestore ready = cluster.awaitRestore("awake", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 1, RESTORE_TIMEOUT);
        assertThat(ready.getStatus().pods.getFirst().phaseMillis).containsKeys("criu-restore", "wake", "ready", "first-token");
        EmulatedNode.Pod copy = cluster.container(ready.getStatus().pods.getFirst().name);
        assertThat(EmulatedNode.get(copy, "/is_sleeping").get("is_sleeping").asBoolean()).isFalse();
        // the copy served the restore's first token: the request history continued from the source's
        assertThat(EmulatedNode.get(copy, "/state").get("counter").asInt()).isEqualTo(counter + 1);
        // woken with a fresh KV pool like the source after its own wake: given the same first-token request, their
        // next answers match
        assertThat(digestOfNextAnswer(copy)).isEqualTo(digestOfNextAnswerAfterTheProbe(source));
    }

    @Test
    void deletingTheSnapshotWhileARestoreRunsIsDeferredAndTheRestoredCopiesServe() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 1, false);
        cluster.sourcePod("vllm-0", "node-a");
        EmulatedNode.complete(cluster.container("vllm-0"), "warm up");
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, SNAPSHOT_TIMEOUT);
        String imageId = cluster.getSnapshot("warm").getStatus().imageId;

        cluster.restore("qwen", "warm", 2);
        // one agent slot: the second copy waits in the queue while the first restores
        cluster.awaitRestore("qwen", s -> s.pods.stream().anyMatch(p -> p.phase == RestorePodPhase.Restoring), RESTORE_TIMEOUT);
        client.resources(VllmSnapshot.class).inNamespace(cluster.namespace).withName("warm").delete();

        VllmSnapshot deferred = cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Deleting
                && Conditions.isTrue(s.conditions, Conditions.IN_USE), Duration.ofSeconds(30));
        assertThat(Conditions.find(deferred.getStatus().conditions, Conditions.IN_USE).orElseThrow().getMessage())
                .contains("still used by VllmRestore qwen");
        VllmRestore blocked = cluster.awaitRestore("qwen", s -> Conditions.find(s.conditions, Conditions.SNAPSHOT_READY)
                .map(c -> "SnapshotDeleting".equals(c.getReason())).orElse(false), Duration.ofSeconds(30));
        assertThat(Conditions.find(blocked.getStatus().conditions, Conditions.SNAPSHOT_READY).orElseThrow().getMessage())
                .contains("no new ones are made");
        // the image stays while a restore uses it, and the copies already made are restored whole and serve
        VllmRestore finished = cluster.awaitRestore("qwen", s -> s.readyReplicas == 2, RESTORE_TIMEOUT);
        assertThat(finished.getStatus().phase).isEqualTo(RestorePhase.Ready);
        assertThat(cluster.images("node-a")).hasSize(1);
        // no new pod is made from a snapshot being deleted: scaling up is refused by a condition, not half done
        cluster.scale("qwen", 3);
        Thread.sleep(1500);
        assertThat(cluster.restorePods("qwen")).hasSize(2);
        String source = digestOfNextAnswerAfterTheProbe(cluster.container("vllm-0"));
        for (Pod pod : cluster.restorePods("qwen")) {
            assertThat(digestOfNextAnswer(cluster.container(pod.getMetadata().getName()))).isEqualTo(source);
        }

        // the user deletes the restore (its pods go with it, as the garbage collector does); then the snapshot goes
        client.resources(VllmRestore.class).inNamespace(cluster.namespace).withName("qwen").delete();
        client.pods().inNamespace(cluster.namespace).withLabel(io.vllmsnap.api.ApiConstants.RESTORE_LABEL, "qwen").delete();
        await().atMost(Duration.ofSeconds(30)).until(() -> cluster.getSnapshot("warm") == null);
        assertThat(cluster.images("node-a")).isEmpty();
        assertThat(cluster.agent("node-a").imageStore().find(cluster.namespace, imageId)).isEmpty();
        assertThat(EmulatedNode.answers(cluster.container("vllm-0"))).as("the source serves").isTrue();
    }

    @Test
    void restoresOnTheSecondNodeWhenTheImageLivesOnAVolumeBothNodesSee() throws Exception {
        cluster = new EmulatedCluster(client, agents, 2, 2, true);
        cluster.sourcePod("vllm-0", "node-a");
        EmulatedNode.complete(cluster.container("vllm-0"), "warm up");
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, SNAPSHOT_TIMEOUT);
        assertThat(cluster.images("node-b")).as("node-b sees the image on the shared volume").hasSize(1);

        var spec = new io.vllmsnap.api.VllmRestoreSpec("warm", 2);
        spec.nodeSelector = java.util.Map.of("kubernetes.io/hostname", "node-b");
        cluster.restore("on-b", spec);
        VllmRestore ready = cluster.awaitRestore("on-b", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 2, RESTORE_TIMEOUT);

        assertThat(ready.getStatus().pods).allSatisfy(p -> assertThat(p.node).isEqualTo("node-b"));
        assertThat(cluster.agent("node-b").restoreJobs).hasSize(2);
        assertThat(cluster.agent("node-a").restoreJobs).isEmpty();
        String source = digestOfNextAnswerAfterTheProbe(cluster.container("vllm-0"));
        for (var p : ready.getStatus().pods) {
            assertThat(digestOfNextAnswer(cluster.container(p.name))).isEqualTo(source);
        }
    }

    static String digestOfNextAnswer(EmulatedNode.Pod pod) throws Exception {
        return EmulatedNode.complete(pod, "what state are you in?").get("vllmsnap").get("digest").asText();
    }

    /**
     * The next answer of a source left running, once it has served the request every restore ends with (the first
     * token, which each copy served): the answer a restored copy gives first. Call once per source.
     */
    static String digestOfNextAnswerAfterTheProbe(EmulatedNode.Pod source) throws Exception {
        EmulatedNode.firstTokenProbe(source);
        return digestOfNextAnswer(source);
    }

    static String conditions(VllmSnapshot s) {
        return s.getStatus().conditions.stream().map(c -> c.getType() + "=" + c.getStatus() + " " + c.getReason() + ": "
                + c.getMessage()).collect(Collectors.joining("; "));
    }

    /** Keeps a status as the test saw it (docs/e2e.md quotes it). */
    void writeStatus(String file, Object resource) throws Exception {
        Files.writeString(EmulatedCluster.WORK.resolve(file), client.getKubernetesSerialization().asYaml(resource));
    }
}
