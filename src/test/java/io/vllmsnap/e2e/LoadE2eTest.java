package io.vllmsnap.e2e;

import io.vllmsnap.testing.ManagementInterface;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.container.EmulatedNode;
import io.vllmsnap.api.RestorePhase;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Twenty replicas asked for at once from one node whose agent runs four jobs at a time. Root required (real CRIU). */
@QuarkusTest
@TestProfile(E2eProfile.class)
@WithKubernetesTestServer(crud = true)
class LoadE2eTest {
    static final int REPLICAS = 20;
    static final int CONCURRENCY = 4;

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
    void twentyReplicasAtOnceQueueOnTheAgentAndAllEndReady() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, CONCURRENCY, false);
        cluster.sourcePod("vllm-0", "node-a");
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, Duration.ofSeconds(90));
        double restoresBefore = successfulRestores();
        InProcessAgent agent = cluster.agent("node-a");

        // the node starts all twenty placeholders, then reports them running together: the restores arrive at once
        cluster.kubelet.holdStatus = true;
        cluster.restore("burst", "warm", REPLICAS);
        await().atMost(Duration.ofSeconds(120)).until(() -> cluster.kubelet.runningPods().size() == REPLICAS + 1);
        List<Double> depth = new CopyOnWriteArrayList<>();
        Thread sampler = Thread.ofPlatform().daemon().start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                depth.add(agent.queueDepth());
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        List<Integer> queuePositions = new CopyOnWriteArrayList<>();
        cluster.kubelet.holdStatus = false;
        VllmRestore ready;
        try {
            ready = await().atMost(Duration.ofSeconds(240)).pollInterval(Duration.ofMillis(200)).until(() -> {
                VllmRestore r = cluster.getRestore("burst");
                if (r.getStatus() != null) {
                    r.getStatus().pods.stream().filter(p -> p.message != null && p.message.startsWith("queued at position"))
                            .forEach(p -> queuePositions.add(Integer.parseInt(p.message.replaceAll("\\D+", ""))));
                }
                return r;
            }, r -> r.getStatus() != null && r.getStatus().phase == RestorePhase.Ready && r.getStatus().readyReplicas == REPLICAS);
            Thread.sleep(100);
        } finally {
            sampler.interrupt();
            sampler.join();
        }

        assertThat(ready.getStatus().pods).hasSize(REPLICAS).allSatisfy(p -> assertThat(p.phase).isEqualTo(RestorePodPhase.Ready));
        // the agent's queue depth rose while more than four restores waited, and fell back to zero
        assertThat(depth.stream().mapToDouble(Double::doubleValue).max().orElse(0)).isGreaterThanOrEqualTo(1);
        assertThat(depth.getLast()).isZero();
        assertThat(agent.queueDepth()).isZero();
        // restore latencies landed in the operator's histogram, one per replica
        assertThat(successfulRestores() - restoresBefore).isGreaterThanOrEqualTo(REPLICAS);
        String metrics = ManagementInterface.given().get("/q/metrics").then().statusCode(200).extract().asString();
        assertThat(metrics).contains("vllmsnap_restore_duration_seconds_bucket{").containsPattern(
                "vllmsnap_restore_duration_seconds_count\\{phase=\"criu-restore\",result=\"success\"}");
        // every copy answers with the snapshot's state
        String expected = null;
        List<String> answers = new ArrayList<>();
        for (var p : ready.getStatus().pods) {
            answers.add(SnapshotRestoreE2eTest.digestOfNextAnswer(cluster.container(p.name)));
        }
        expected = SnapshotRestoreE2eTest.digestOfNextAnswerAfterTheProbe(cluster.container("vllm-0"));
        assertThat(answers).containsOnly(expected);
        assertThat(cluster.leftovers("node-a")).isEmpty();
        System.out.printf("e2e load: %d restores, agent queue depth max %.0f, queue positions seen %s%n", REPLICAS,
                depth.stream().mapToDouble(Double::doubleValue).max().orElse(0), queuePositions.stream().distinct().sorted().toList());
    }

    /** Count of successful restores in the operator's latency histogram, as Prometheus scrapes it. */
    static double successfulRestores() {
        String metrics = ManagementInterface.given().get("/q/metrics").then().statusCode(200).extract().asString();
        Matcher m = Pattern.compile("vllmsnap_restore_duration_seconds_count\\{phase=\"total\",result=\"success\"} ([0-9.E]+)")
                .matcher(metrics);
        return m.find() ? Double.parseDouble(m.group(1)) : 0;
    }
}
