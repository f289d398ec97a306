package io.vllmsnap.agent.web;

import io.vllmsnap.chart.MetricNames;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.AgentUnavailableException;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.client.AgentTls;
import io.vllmsnap.agent.client.HttpNodeAgent;
import io.vllmsnap.agent.container.EmulatedNode;
import jakarta.inject.Inject;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The agent's HTTPS API as the operator uses it, through the production client: TokenReview answered by the Fabric8
 * mock server, TLS with a test CA, and the snapshot/restore scenario on emulated pods with real CRIU.
 */
@QuarkusTest
@TestProfile(AgentTestProfile.class)
@WithKubernetesTestServer
class AgentApiTest {

    /** The operator's projected token for the agents' audience, and one of another service account. */
    static final String OPERATOR_TOKEN = TestTokens.issue(TestTokens.OPERATOR_USER, TestTokens.AGENT_AUDIENCE, Instant.now().plusSeconds(7200));
    static final String FOREIGN_TOKEN = TestTokens.issue(TestTokens.OTHER_USER, TestTokens.AGENT_AUDIENCE, Instant.now().plusSeconds(7200));

    @KubernetesTestServer
    KubernetesServer server;

    @TestHTTPResource(value = "/", tls = true)
    URI base;

    /** Health and metrics: the management port, apart from the API (its root is /q/). */
    @TestHTTPResource(value = "/", tls = true, management = true)
    URI management;

    @Inject
    ObjectMapper json;

    HttpClient https;

    /** TokenReviews answered as an API server does (TestTokens). */
    static void answerTokenReviews(KubernetesServer server) {
        TestTokens.answerReviews(server);
    }

    @BeforeEach
    void setUp() throws Exception {
        answerTokenReviews(server);
        https = HttpClient.newBuilder().sslContext(AgentTls.context(TestTls.dir().resolve("ca.crt"), TestTls.SERVER_NAME)).build();
    }

    NodeAgent agent(String token) {
        return new HttpNodeAgent(https, base, () -> token, json, Duration.ofSeconds(30));
    }

    HttpResponse<String> get(String path, String token) throws Exception {
        return get(base, path, token);
    }

    HttpResponse<String> get(URI root, String path, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(root.resolve(path)).GET();
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return https.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void onlyTheOperatorsServiceAccountGetsInAndRefusalsAreCounted() throws Exception {
        assertThat(get("api/v1/capabilities", null).statusCode()).isEqualTo(401);
        assertThat(get("api/v1/capabilities", "not-a-token").statusCode()).isEqualTo(401);
        HttpResponse<String> foreign = get("api/v1/capabilities", FOREIGN_TOKEN);
        assertThat(foreign.statusCode()).isEqualTo(403);
        assertThat(json.readTree(foreign.body()).path("reason").asText()).isEqualTo("Forbidden");
        assertThat(get("api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);

        assertThatThrownBy(() -> agent(FOREIGN_TOKEN).images("team-a"))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("Forbidden"));

        String metrics = get(management, "metrics", null).body();
        assertThat(metrics).containsPattern("vllmsnap_agent_auth_failures_total\\{[^}]*reason=\"missing-token\"[^}]*} [1-9]")
                .containsPattern("vllmsnap_agent_auth_failures_total\\{[^}]*reason=\"malformed-token\"[^}]*} [1-9]")
                .containsPattern("vllmsnap_agent_auth_failures_total\\{[^}]*reason=\"forbidden-identity\"[^}]*} [1-9]");
        // the storage gauges the "storage nearly full" alert divides: real numbers of the file system under target/
        long size = Files.getFileStore(AgentTestProfile.STORAGE.getParent()).getTotalSpace();
        assertThat(metrics).containsPattern("(?m)^vllmsnap_agent_image_storage_free_bytes(\\{[^}]*})? [0-9.E]+$")
                .containsPattern("(?m)^vllmsnap_agent_image_storage_size_bytes(\\{[^}]*})? [0-9.E]+$");
        assertThat(gauge(metrics, "vllmsnap_agent_image_storage_size_bytes")).isEqualTo(size);
        assertThat(gauge(metrics, "vllmsnap_agent_image_storage_free_bytes")).isPositive().isLessThanOrEqualTo(size);
        // every agent series the dashboard and alerts may read is really exported
        assertThat(MetricNames.fromScrape(metrics)).containsAll(MetricNames.expectedExports().stream()
                .filter(name -> name.startsWith(MetricNames.AGENT_PREFIX)).toList());
    }

    private static double gauge(String exposition, String name) {
        return exposition.lines().filter(l -> l.startsWith(name + " ") || l.startsWith(name + "{"))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).findFirst().orElseThrow();
    }

    @Test
    void clientChecksTheAgentCertificateName() throws Exception {
        HttpClient wrongName = HttpClient.newBuilder()
                .sslContext(AgentTls.context(TestTls.dir().resolve("ca.crt"), "someone-else")).build();
        NodeAgent agent = new HttpNodeAgent(wrongName, base, () -> OPERATOR_TOKEN, json, Duration.ofSeconds(10));

        assertThatThrownBy(agent::capabilities).isInstanceOf(AgentUnavailableException.class);
    }

    @Test
    void badIdsAreRefusedWith400() throws Exception {
        NodeAgent agent = agent(OPERATOR_TOKEN);
        String cid = "containerd://" + "a".repeat(64);
        String uid = "3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b";
        for (SnapshotJobRequest bad : List.of(
                new SnapshotJobRequest("snap-x", "../etc", "img", uid, "vllm", cid, 0, true, 8000),
                new SnapshotJobRequest("snap-x", "team-a", "../../root", uid, "vllm", cid, 0, true, 8000),
                new SnapshotJobRequest("Snap-X", "team-a", "img", uid, "vllm", cid, 0, true, 8000),
                new SnapshotJobRequest("snap-x", "team-a", "i".repeat(64), uid, "vllm", cid, 0, true, 8000),
                new SnapshotJobRequest("snap-x", "team-a", "img", "../" + uid, "vllm", cid, 0, true, 8000),
                new SnapshotJobRequest("snap-x", "team-a", "img", uid, "vllm", "containerd://../../bin/sh", 0, true, 8000))) {
            assertThatThrownBy(() -> agent.startSnapshot(bad)).as(bad.toString())
                    .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("InvalidId"));
        }
        assertThat(get("api/v1/jobs/UPPER", OPERATOR_TOKEN).statusCode()).isEqualTo(400);
        assertThat(get("api/v1/images?namespace=..", OPERATOR_TOKEN).statusCode()).isEqualTo(400);
        assertThat(get("api/v1/images", OPERATOR_TOKEN).statusCode()).isEqualTo(400);
        assertThat(get("api/v1/jobs/a%2F..%2F..%2Fetc", OPERATOR_TOKEN).statusCode()).isEqualTo(400);
        assertThat(agent.job("no-such-job")).isNull();
        assertThat(Files.exists(AgentTestProfile.STORAGE.resolve("images/..")) && Files.exists(AgentTestProfile.STORAGE.resolve("etc"))).isFalse();
    }

    @Test
    void capabilitiesDescribeTheNode() {
        NodeCapabilities caps = agent(OPERATOR_TOKEN).capabilities();

        assertThat(caps.nodeName()).isEqualTo("test-node");
        assertThat(caps.criuVersion()).matches("\\d+\\.\\d+.*");
        assertThat(caps.freeImageBytes()).isPositive();
        assertThat(caps.maxConcurrentJobs()).isEqualTo(2);
    }

    /**
     * The issue's scenario: a source pod's container snapshotted through the API, restored into a placeholder pod
     * with another address; the server answers there with the source's state, sits in the placeholder's cgroup and
     * dies with it.
     */
    @Test
    void containerSnapshotRestoresIntoAPlaceholderPod() throws Exception {
        NodeAgent agent = agent(OPERATOR_TOKEN);
        try (EmulatedNode node = new EmulatedNode()) {
            EmulatedNode.Pod source = node.pod();
            Path weights = Files.createDirectories(Path.of("target/agent-api-it").toAbsolutePath()).resolve("weights-16m");
            node.startServer(source, weights, "16MiB", "64MiB");
            EmulatedNode.complete(source, "before the snapshot");
            JsonNode before = EmulatedNode.get(source, "/state");

            JobStatus accepted = agent.startSnapshot(new SnapshotJobRequest("snap-api", "team-a", "warm-api", source.uid(),
                    "vllm", source.containerRef(), 0, false, EmulatedNode.PORT));
            assertThat(accepted.state()).isIn(JobState.QUEUED, JobState.RUNNING);
            JobStatus snapshot = awaitDone(agent, "snap-api");
            assertThat(snapshot.state()).as(snapshot.errorMessage()).isEqualTo(JobState.SUCCEEDED);
            assertThat(snapshot.phaseMillis()).containsKeys("discover", "criu-dump", "finalize");
            assertThat(agent.images("team-a")).anySatisfy(i -> assertThat(i.imageId()).isEqualTo("warm-api"));
            assertThat(agent.images("team-b")).isEmpty();
            await().atMost(30, TimeUnit.SECONDS).until(() -> !EmulatedNode.answers(source)); // not left running

            EmulatedNode.Pod target = node.pod();
            node.startPlaceholder(target);
            assertThatThrownBy(() -> agent.startRestore(new RestoreJobRequest("restore-other-ns", "team-b", "warm-api",
                    target.uid(), "vllm", target.containerRef(), EmulatedNode.PORT, null)))
                    .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("ImageNotFound"));

            agent.startRestore(new RestoreJobRequest("restore-api", "team-a", "warm-api", target.uid(), "vllm",
                    target.containerRef(), EmulatedNode.PORT, null));
            JobStatus restore = awaitDone(agent, "restore-api");
            assertThat(restore.state()).as(restore.errorMessage()).isEqualTo(JobState.SUCCEEDED);
            // request accepted → first token: the restore ends with one generated token, and its total covers that
            assertThat(restore.phaseMillis()).containsKeys("discover", "criu-restore", "ready", "first-token");
            assertThat(restore.totalMillis())
                    .isGreaterThanOrEqualTo(restore.phaseMillis().values().stream().mapToLong(Long::longValue).sum())
                    .isGreaterThanOrEqualTo(restore.phaseMillis().get("first-token"));

            // The source is gone (not left running), so it cannot be sent the same probe: what the probe cannot touch
            // (weights, kernels) is the source's; the counter is the source's plus the probe, proving the request
            // history came back. The KV pool whole is compared with a source left running in ContainerJobsRealCriuTest.
            JsonNode after = EmulatedNode.get(target, "/state");
            assertThat(after.get("counter").asInt()).isEqualTo(before.get("counter").asInt() + 1);
            assertThat(after.get("weights_sha256")).isEqualTo(before.get("weights_sha256"));
            assertThat(after.get("kernels_sha256")).isEqualTo(before.get("kernels_sha256"));
            assertThat(after.get("kv_sha256")).as("the probe left its trace in the KV pool").isNotEqualTo(before.get("kv_sha256"));
            assertThat(EmulatedNode.complete(target, "after the restore").path("vllmsnap").path("counter").asInt())
                    .isEqualTo(before.get("counter").asInt() + 2);

            assertThat(after.get("pid").asInt()).as("PID 1 of its own PID namespace, as in the source").isEqualTo(1);
            int restoredPid = serverPidIn(target);
            assertThat(restoredPid).as("restored server is a process of the placeholder's cgroup").isPositive();

            EmulatedNode.kill(target);
            await().atMost(30, TimeUnit.SECONDS).until(() -> !EmulatedNode.answers(target));
            await().atMost(30, TimeUnit.SECONDS).until(() -> !isRunning(restoredPid));

            String metrics = get(management, "metrics", null).body();
            assertThat(metrics).contains("vllmsnap_agent_job_phase_duration_seconds_count{kind=\"snapshot\",phase=\"criu-dump\"")
                    .contains("vllmsnap_agent_job_phase_duration_seconds_count{kind=\"restore\",phase=\"criu-restore\"")
                    .contains("vllmsnap_agent_queue_depth")
                    .contains("vllmsnap_agent_image_written_bytes_total")
                    .contains("vllmsnap_agent_image_read_bytes_total");
            agent.deleteImage("team-a", "warm-api");
            assertThat(agent.images("team-a")).noneSatisfy(i -> assertThat(i.imageId()).isEqualTo("warm-api"));
        }
    }

    /** The host PID of the python server among the placeholder cgroup's processes. */
    private static int serverPidIn(EmulatedNode.Pod pod) throws Exception {
        for (int pid : EmulatedNode.procs(pod)) {
            String cmdline = new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline"))).replace('\0', ' ');
            if (cmdline.contains("server.py")) {
                return pid;
            }
        }
        return -1;
    }

    private static boolean isRunning(int pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return !stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (Exception e) {
            return false;
        }
    }

    private static JobStatus awaitDone(NodeAgent agent, String jobId) {
        await().atMost(120, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(200)).until(() -> agent.job(jobId).state().isTerminal());
        return agent.job(jobId);
    }
}
