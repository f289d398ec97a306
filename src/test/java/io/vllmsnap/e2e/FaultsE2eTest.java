package io.vllmsnap.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.container.EmulatedNode;
import io.vllmsnap.api.RestorePhase;
import io.vllmsnap.api.RestorePodPhase;
import io.vllmsnap.api.SnapshotPhase;
import io.vllmsnap.api.VllmRestore;
import io.vllmsnap.api.VllmSnapshot;
import io.vllmsnap.operator.Conditions;
import io.vllmsnap.operator.VllmRestoreReconciler;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Faults on the emulated cluster. In every case the resources end in a phase with a condition that says what happened,
 * no pod or image is left behind, and the source keeps serving. Root required (real CRIU).
 */
@QuarkusTest
@TestProfile(E2eProfile.class)
@WithKubernetesTestServer(crud = true)
class FaultsE2eTest {
    static final Duration TIMEOUT = Duration.ofSeconds(120);
    /** A larger KV pool makes dumps and restores last long enough to cut into (a few hundred ms). */
    static final String LARGER_KV = "192MiB";

    @Inject
    KubernetesClient client;
    @Inject
    E2eNodeAgents agents;
    @Inject
    OperatorRestarts operator;
    @KubernetesTestServer
    KubernetesServer apiServer;

    EmulatedCluster cluster;

    @AfterEach
    void tearDown() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void operatorRestartedMidSnapshotFollowsTheSameJobToReady() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 1, false);
        cluster.sourcePod("vllm-0", "node-a", LARGER_KV);
        InProcessAgent agent = cluster.agent("node-a");

        cluster.snapshot("warm", "vllm-0", 0);
        VllmSnapshot started = cluster.awaitSnapshot("warm", s -> s.jobId != null, TIMEOUT);
        operator.stop();
        try {
            // while no operator runs, the job goes on on the node
            await().atMost(TIMEOUT).until(() -> agent.job(started.getStatus().jobId).state().isTerminal());
            assertThat(cluster.getSnapshot("warm").getStatus().phase).isNotEqualTo(SnapshotPhase.Ready);
        } finally {
            operator.start();
        }

        VllmSnapshot ready = cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, TIMEOUT);
        assertThat(agent.snapshotJobs).containsExactly(ready.getStatus().jobId); // followed, not taken again
        assertThat(cluster.images("node-a")).hasSize(1);
        assertThat(cluster.leftovers("node-a")).isEmpty();
        assertThat(EmulatedNode.answers(cluster.container("vllm-0"))).isTrue();
    }

    @Test
    void operatorRestartedMidRestoreFollowsTheRunningJobs() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 2, false);
        cluster.sourcePod("vllm-0", "node-a", LARGER_KV);
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, TIMEOUT);
        InProcessAgent agent = cluster.agent("node-a");

        cluster.restore("qwen", "warm", 2);
        cluster.awaitRestore("qwen", s -> s.pods.stream().anyMatch(p -> p.phase == RestorePodPhase.Restoring), TIMEOUT);
        operator.stop();
        try {
            // while no operator runs, the jobs it asked for go on on the node
            await().atMost(TIMEOUT).until(() -> agent.restoreJobs.stream().allMatch(j -> agent.job(j).state().isTerminal()));
        } finally {
            operator.start();
        }

        VllmRestore ready = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 2, TIMEOUT);
        assertThat(cluster.restorePods("qwen")).hasSize(2);
        assertThat(agent.restoreJobs).hasSize(2) // one job per pod: those running were followed, not started again
                .containsExactlyInAnyOrderElementsOf(ready.getStatus().pods.stream().map(p -> VllmRestoreReconciler.jobId(p.uid)).toList());
        assertThat(agent.restoreJobs).allSatisfy(j -> assertThat(agent.job(j).state()).isEqualTo(JobState.SUCCEEDED));
        assertThat(cluster.leftovers("node-a")).isEmpty();
        assertThat(EmulatedNode.answers(cluster.container("vllm-0"))).isTrue();
    }

    @Test
    void agentKilledMidRestoreIsReportedAndTheRestoreIsRedoneInANewPod() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 1, false);
        cluster.sourcePod("vllm-0", "node-a", LARGER_KV);
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, TIMEOUT);
        InProcessAgent agent = cluster.agent("node-a");

        cluster.restore("qwen", "warm", 1);
        await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(2)).until(() -> InProcessAgent.criuRuns("restore"));
        agent.kill();
        String firstPod = cluster.restorePods("qwen").getFirst().getMetadata().getName();
        // while the agent is down, the restore says so
        VllmRestore waiting = cluster.awaitRestore("qwen", s -> !s.pods.isEmpty() && "AgentUnreachable".equals(s.pods.getFirst().reason),
                Duration.ofSeconds(30));
        assertThat(waiting.getStatus().pods.getFirst().message).contains("could not be reached");
        agent.start(); // the agent pod comes back on the same node storage

        VllmRestore ready = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 1, TIMEOUT);
        String pod = ready.getStatus().pods.getFirst().name;
        assertThat(pod).as("a restore cut off half-way is redone in a new pod").isNotEqualTo(firstPod);
        assertThat(eventReasons("qwen")).contains("AgentRestarted");
        await().atMost(Duration.ofSeconds(10)).until(() -> cluster.kubelet.runningPods().equals(Set.of("vllm-0", pod)));
        assertThat(cluster.restorePods("qwen")).hasSize(1);
        assertThat(cluster.leftovers("node-a")).isEmpty();
        assertThat(cluster.images("node-a")).hasSize(1);
        String source = SnapshotRestoreE2eTest.digestOfNextAnswerAfterTheProbe(cluster.container("vllm-0"));
        assertThat(SnapshotRestoreE2eTest.digestOfNextAnswer(cluster.container(pod))).isEqualTo(source);
    }

    @Test
    void sourcePodDeletedMidSnapshotFailsTheSnapshotCleanly() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 1, false);
        cluster.sourcePod("vllm-0", "node-a", LARGER_KV);

        cluster.snapshot("warm", "vllm-0", 0);
        await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(2)).until(() -> InProcessAgent.criuRuns("dump"));
        client.pods().inNamespace(cluster.namespace).withName("vllm-0").delete();

        VllmSnapshot failed = cluster.awaitSnapshot("warm", s -> s.phase != null && s.phase.isTerminal(), TIMEOUT);
        assertThat(failed.getStatus().phase).isEqualTo(SnapshotPhase.Failed);
        var ready = Conditions.find(failed.getStatus().conditions, Conditions.READY).orElseThrow();
        assertThat(ready.getStatus()).isEqualTo("False");
        assertThat(ready.getReason()).isNotBlank();
        assertThat(ready.getMessage()).contains("snapshot job failed");
        assertThat(cluster.images("node-a")).isEmpty();
        assertThat(cluster.leftovers("node-a")).isEmpty();
        // a restore from it says why there is nothing to restore, and makes no pod
        cluster.restore("qwen", "warm", 1);
        VllmRestore refused = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Failed, Duration.ofSeconds(30));
        assertThat(Conditions.find(refused.getStatus().conditions, Conditions.SNAPSHOT_READY).orElseThrow().getReason())
                .isEqualTo("SnapshotFailed");
        assertThat(cluster.restorePods("qwen")).isEmpty();
    }

    @Test
    void anUnreachableAgentIsAClearConditionAndWorkGoesOnWhenItAnswers() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 2, false);
        cluster.sourcePod("vllm-0", "node-a");
        InProcessAgent agent = cluster.agent("node-a");

        agent.unreachable = true;
        cluster.snapshot("warm", "vllm-0", 0);
        VllmSnapshot waiting = cluster.awaitSnapshot("warm", s -> Conditions.find(s.conditions, Conditions.AGENT_REACHABLE)
                .map(c -> "AgentUnreachable".equals(c.getReason())).orElse(false), Duration.ofSeconds(30));
        assertThat(waiting.getStatus().phase).isEqualTo(SnapshotPhase.InProgress);
        assertThat(Conditions.find(waiting.getStatus().conditions, Conditions.AGENT_REACHABLE).orElseThrow().getMessage())
                .contains("node-a", "could not be reached");
        agent.unreachable = false;
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, TIMEOUT);

        agent.unreachable = true;
        cluster.restore("qwen", "warm", 1);
        VllmRestore blocked = cluster.awaitRestore("qwen", s -> !s.pods.isEmpty() && "AgentUnreachable".equals(s.pods.getFirst().reason),
                Duration.ofSeconds(30));
        assertThat(blocked.getStatus().phase).isEqualTo(RestorePhase.Progressing);
        assertThat(blocked.getStatus().pods.getFirst().message).contains("could not be reached");
        agent.unreachable = false;
        cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 1, TIMEOUT);
        assertThat(cluster.restorePods("qwen")).hasSize(1);
        assertThat(EmulatedNode.answers(cluster.container("vllm-0"))).isTrue();
    }

    @Test
    void theApiServerAnsweringConflictsAndErrorsForAWhileOnlyDelaysTheRestore() throws Exception {
        cluster = new EmulatedCluster(client, agents, 1, 2, false);
        cluster.sourcePod("vllm-0", "node-a");
        cluster.snapshot("warm", "vllm-0", 0);
        cluster.awaitSnapshot("warm", s -> s.phase == SnapshotPhase.Ready, TIMEOUT);

        String restores = "/apis/vllmsnap.io/v1alpha1/namespaces/" + cluster.namespace + "/vllmrestores/qwen/status";
        String pods = "/api/v1/namespaces/" + cluster.namespace + "/pods";
        apiServer.expect().patch().withPath(restores).andReturn(409, status(409, "Conflict")).times(3);
        apiServer.expect().patch().withPath(restores).andReturn(500, status(500, "InternalError")).times(3);
        apiServer.expect().post().withPath(pods).andReturn(500, status(500, "InternalError")).times(3);
        cluster.restore("qwen", "warm", 2);

        VllmRestore ready = cluster.awaitRestore("qwen", s -> s.phase == RestorePhase.Ready && s.readyReplicas == 2, TIMEOUT);
        assertThat(cluster.restorePods("qwen")).hasSize(2);
        // every pod made got exactly one restore, and none is left without one
        assertThat(cluster.agent("node-a").restoreJobs).hasSize(2)
                .containsExactlyInAnyOrderElementsOf(ready.getStatus().pods.stream().map(p -> VllmRestoreReconciler.jobId(p.uid)).toList());
        assertThat(EmulatedNode.answers(cluster.container("vllm-0"))).isTrue();
    }

    private static io.fabric8.kubernetes.api.model.Status status(int code, String reason) {
        return new StatusBuilder().withStatus("Failure").withCode(code).withReason(reason)
                .withMessage("injected by the e2e test").build();
    }

    private List<String> eventReasons(String involved) {
        return client.v1().events().inNamespace(cluster.namespace).list().getItems().stream()
                .filter(e -> involved.equals(e.getInvolvedObject().getName())).map(Event::getReason).toList();
    }
}
