package io.vllmsnap.operator;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodConditionBuilder;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Which nodes have a ready agent and what each can do, published on the Node objects (Fabric8 mock server). */
@EnableKubernetesMockClient(crud = true)
class NodeAgentReporterTest {
    static final String NS = "vllmsnap";
    static final Map<String, String> AGENT_LABELS = Map.of("app.kubernetes.io/component", "agent");
    static final ObjectMapper JSON = new ObjectMapper();

    KubernetesClient client;
    FakeNodeAgents agents;
    NodeAgentReporter reporter;

    @BeforeEach
    void setUp() {
        agents = new FakeNodeAgents();
        reporter = new NodeAgentReporter(client, agents, JSON, NS, AGENT_LABELS);
    }

    void node(String name) {
        client.nodes().resource(new NodeBuilder().withNewMetadata().withName(name).addToLabels("kubernetes.io/hostname", name)
                .endMetadata().build()).create();
    }

    Pod agentPod(String name, String node, boolean ready) {
        Pod pod = client.pods().inNamespace(NS).resource(new PodBuilder()
                .withNewMetadata().withName(name).withNamespace(NS).withLabels(AGENT_LABELS).endMetadata()
                .withNewSpec().withNodeName(node).addNewContainer().withName("agent").withImage("agent").endContainer().endSpec()
                .build()).create();
        pod.setStatus(new PodStatusBuilder().withPhase("Running").withPodIP("10.0.0.1")
                .addToConditions(new PodConditionBuilder().withType("Ready").withStatus(ready ? "True" : "False").build()).build());
        return client.pods().inNamespace(NS).resource(pod).updateStatus();
    }

    Node get(String name) {
        return client.nodes().withName(name).get();
    }

    JsonNode detail(String node) throws Exception {
        return JSON.readTree(get(node).getMetadata().getAnnotations().get(NodeAgentReporter.AGENT_ANNOTATION));
    }

    @Test
    void aReadyAgentsCapabilitiesBecomeLabelsAndAnAnnotation() throws Exception {
        node("gpu-1");
        agentPod("agent-a", "gpu-1", true);
        agents.on("gpu-1");

        var reports = reporter.report();

        assertThat(reports.get("gpu-1").ready()).isTrue();
        assertThat(get("gpu-1").getMetadata().getLabels())
                .containsEntry("kubernetes.io/hostname", "gpu-1")
                .containsEntry(NodeAgentReporter.READY_LABEL, "true")
                .containsEntry(NodeAgentReporter.CRIU_LABEL, "4.2.1")
                .containsEntry(NodeAgentReporter.DRIVER_LABEL, "580.65.06")
                .containsEntry(NodeAgentReporter.GPU_MODEL_LABEL, "NVIDIA-H100-80GB-HBM3")
                .containsEntry(NodeAgentReporter.GPU_COUNT_LABEL, "1")
                .containsEntry(NodeAgentReporter.MPS_DAEMON_LABEL, "false")
                .containsEntry(NodeAgentReporter.MPS_CHECKPOINT_LABEL, "false");
        JsonNode detail = detail("gpu-1");
        assertThat(detail.path("ready").asBoolean()).isTrue();
        assertThat(detail.path("pod").asText()).isEqualTo("vllmsnap/agent-a");
        assertThat(detail.path("capabilities").path("gpus").get(0).path("model").asText()).isEqualTo("NVIDIA H100 80GB HBM3");
        assertThat(detail.path("capabilities").path("freeImageBytes").asLong()).isEqualTo(1L << 40);

        String version = get("gpu-1").getMetadata().getResourceVersion();
        reporter.report();
        assertThat(get("gpu-1").getMetadata().getResourceVersion()).as("nothing changed, nothing written").isEqualTo(version);
    }

    @Test
    void unreadyUnreachableAndRemovedAgentsAreReportedNotReady() throws Exception {
        for (String n : new String[] {"n-unready", "n-unreachable", "n-removed", "n-none"}) {
            node(n);
        }
        agentPod("agent-u", "n-unready", false);
        agents.on("n-unready");
        agentPod("agent-x", "n-unreachable", true);
        agents.on("n-unreachable").unreachable = true;
        Pod leaving = agentPod("agent-r", "n-removed", true);
        agents.on("n-removed");
        reporter.report();
        assertThat(get("n-removed").getMetadata().getLabels()).containsEntry(NodeAgentReporter.READY_LABEL, "true")
                .containsKey(NodeAgentReporter.CRIU_LABEL);

        client.pods().inNamespace(NS).resource(leaving).withGracePeriod(0).delete();
        var reports = reporter.report();

        assertThat(reports.get("n-unready").reason()).contains("not ready");
        assertThat(reports.get("n-unreachable").reason()).contains("did not answer", "connection refused");
        assertThat(reports.get("n-removed").reason()).isEqualTo("no agent pod on this node");
        for (String n : new String[] {"n-unready", "n-unreachable", "n-removed"}) {
            assertThat(get(n).getMetadata().getLabels()).as(n).containsEntry(NodeAgentReporter.READY_LABEL, "false")
                    .doesNotContainKeys(NodeAgentReporter.CRIU_LABEL, NodeAgentReporter.DRIVER_LABEL,
                            NodeAgentReporter.GPU_MODEL_LABEL, NodeAgentReporter.MPS_DAEMON_LABEL);
            assertThat(detail(n).path("ready").asBoolean()).isFalse();
        }
        assertThat(detail("n-unreachable").path("reason").asText()).contains("connection refused");
        assertThat(get("n-none").getMetadata().getLabels()).as("a node that never had an agent is left unlabelled")
                .doesNotContainKey(NodeAgentReporter.READY_LABEL);

        agents.on("n-unreachable").unreachable = false;
        reporter.report();
        assertThat(get("n-unreachable").getMetadata().getLabels()).containsEntry(NodeAgentReporter.READY_LABEL, "true");
    }

    @Test
    void labelValuesAreMadeValid() {
        assertThat(NodeAgentReporter.labelValue("NVIDIA A100-SXM4-80GB")).isEqualTo("NVIDIA-A100-SXM4-80GB");
        assertThat(NodeAgentReporter.labelValue(" (beta) 4.2 ")).isEqualTo("beta-4.2");
        assertThat(NodeAgentReporter.labelValue("x".repeat(80))).hasSize(63);
        assertThat(NodeAgentReporter.labelValue("!!")).isNull();
    }
}
