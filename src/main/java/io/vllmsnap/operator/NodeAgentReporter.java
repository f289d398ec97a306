package io.vllmsnap.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;
import io.vllmsnap.agent.api.NodeCapabilities;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.jboss.logging.Logger;

/**
 * Tells the cluster which nodes have a ready agent and what each can do, as labels on the Node (usable in
 * nodeSelectors and {@code kubectl get nodes -L}) and one JSON annotation with the agent's full answer. A node whose
 * agent pod went away, is not ready or does not answer is labelled {@code vllmsnap.io/agent-ready=false} and loses the
 * capability labels, so nothing is scheduled on the strength of a stale report.
 */
public class NodeAgentReporter {
    private static final Logger LOG = Logger.getLogger(NodeAgentReporter.class);
    public static final String READY_LABEL = "vllmsnap.io/agent-ready";
    public static final String CRIU_LABEL = "vllmsnap.io/criu-version";
    public static final String DRIVER_LABEL = "vllmsnap.io/driver-version";
    public static final String GPU_MODEL_LABEL = "vllmsnap.io/gpu-model";
    public static final String GPU_COUNT_LABEL = "vllmsnap.io/gpu-count";
    public static final String MPS_DAEMON_LABEL = "vllmsnap.io/mps-daemon";
    public static final String MPS_CHECKPOINT_LABEL = "vllmsnap.io/mps-checkpoint";
    /** JSON: {"ready":..., "pod":..., "reason":..., "capabilities":{...the agent's answer...}}. */
    public static final String AGENT_ANNOTATION = "vllmsnap.io/agent";
    private static final List<String> CAPABILITY_LABELS = List.of(CRIU_LABEL, DRIVER_LABEL, GPU_MODEL_LABEL, GPU_COUNT_LABEL,
            MPS_DAEMON_LABEL, MPS_CHECKPOINT_LABEL);

    /** What was found on one node. */
    public record NodeAgentReport(String node, boolean ready, String pod, String reason, NodeCapabilities capabilities) {
    }

    private final KubernetesClient client;
    private final NodeAgents agents;
    private final ObjectMapper json;
    private final String namespace;
    private final Map<String, String> agentPodLabels;

    public NodeAgentReporter(KubernetesClient client, NodeAgents agents, ObjectMapper json, String namespace,
            Map<String, String> agentPodLabels) {
        this.client = client;
        this.agents = agents;
        this.json = json;
        this.namespace = namespace;
        this.agentPodLabels = Map.copyOf(agentPodLabels);
    }

    /** One pass over every node with an agent pod or an earlier report; returns what was published, by node. */
    public synchronized Map<String, NodeAgentReport> report() {
        Map<String, Pod> agentPods = agentPodsByNode();
        Set<String> nodes = new TreeSet<>(agentPods.keySet());
        client.nodes().withLabel(READY_LABEL).list().getItems().forEach(n -> nodes.add(n.getMetadata().getName()));
        Map<String, NodeAgentReport> reports = new TreeMap<>();
        for (String node : nodes) {
            NodeAgentReport report = examine(node, agentPods.get(node));
            reports.put(node, report);
            try {
                publish(report);
            } catch (KubernetesClientException e) {
                LOG.warnf("cannot label node %s with its agent report: %s", node, e.getMessage());
            }
        }
        return reports;
    }

    private Map<String, Pod> agentPodsByNode() {
        Map<String, Pod> byNode = new HashMap<>();
        // during a rollout two agent pods may share a node: a ready one wins, then the newest
        Comparator<Pod> preference = Comparator.<Pod, Boolean>comparing(NodeAgentReporter::ready)
                .thenComparing(p -> p.getMetadata().getCreationTimestamp(), Comparator.nullsFirst(Comparator.naturalOrder()));
        for (Pod pod : client.pods().inNamespace(namespace).withLabels(agentPodLabels).list().getItems()) {
            String node = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
            if (node != null && pod.getMetadata().getDeletionTimestamp() == null) {
                byNode.merge(node, pod, (a, b) -> preference.compare(a, b) >= 0 ? a : b);
            }
        }
        return byNode;
    }

    private NodeAgentReport examine(String node, Pod pod) {
        if (pod == null) {
            return new NodeAgentReport(node, false, null, "no agent pod on this node", null);
        }
        String podName = pod.getMetadata().getName();
        if (!ready(pod)) {
            return new NodeAgentReport(node, false, podName, "agent pod " + podName + " is not ready", null);
        }
        Optional<NodeAgent> agent = agents.forNode(node);
        if (agent.isEmpty()) {
            return new NodeAgentReport(node, false, podName, "agent pod " + podName + " has no address yet", null);
        }
        try {
            return new NodeAgentReport(node, true, podName, null, agent.get().capabilities());
        } catch (RuntimeException e) {
            // unreachable, refused, or an answer that cannot be read: not usable, whatever its pod says
            return new NodeAgentReport(node, false, podName, "agent did not answer: " + e.getMessage(), null);
        }
    }

    private void publish(NodeAgentReport report) {
        Node node = client.nodes().withName(report.node()).get();
        if (node == null) {
            LOG.debugf("node %s is gone; nothing to label", report.node());
            return;
        }
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put(READY_LABEL, String.valueOf(report.ready()));
        CAPABILITY_LABELS.forEach(l -> labels.put(l, null));
        NodeCapabilities caps = report.capabilities();
        if (caps != null) {
            labels.put(CRIU_LABEL, labelValue(caps.criuVersion()));
            labels.put(DRIVER_LABEL, labelValue(caps.driverVersion()));
            List<NodeCapabilities.GpuInfo> gpus = Objects.requireNonNullElse(caps.gpus(), List.of());
            labels.put(GPU_COUNT_LABEL, String.valueOf(gpus.size()));
            labels.put(GPU_MODEL_LABEL, gpus.isEmpty() ? null : labelValue(gpus.getFirst().model()));
            labels.put(MPS_DAEMON_LABEL, String.valueOf(caps.mpsDaemonRunning()));
            labels.put(MPS_CHECKPOINT_LABEL, String.valueOf(caps.mpsCheckpointSupported()));
        }
        String annotation = annotation(report);
        Map<String, String> currentLabels = Objects.requireNonNullElse(node.getMetadata().getLabels(), Map.of());
        Map<String, String> currentAnnotations = Objects.requireNonNullElse(node.getMetadata().getAnnotations(), Map.of());
        boolean unchanged = labels.entrySet().stream().allMatch(e -> Objects.equals(e.getValue(), currentLabels.get(e.getKey())))
                && annotation.equals(currentAnnotations.get(AGENT_ANNOTATION));
        if (unchanged) {
            return;
        }
        if (!String.valueOf(report.ready()).equals(currentLabels.get(READY_LABEL))) {
            LOG.infof("node %s: agent %s%s", report.node(), report.ready() ? "ready" : "not ready",
                    report.reason() == null ? "" : " (" + report.reason() + ")");
        }
        // JSON patch (RFC 6902) rather than merge patch: it removes labels explicitly, which every server (the mock
        // server of the tests included) does the same way
        ArrayNode patch = json.createArrayNode();
        if (node.getMetadata().getLabels() == null) {
            patch.addObject().put("op", "add").put("path", "/metadata/labels").putObject("value");
        }
        if (node.getMetadata().getAnnotations() == null) {
            patch.addObject().put("op", "add").put("path", "/metadata/annotations").putObject("value");
        }
        labels.forEach((key, value) -> {
            if (value != null) {
                patch.addObject().put("op", "add").put("path", "/metadata/labels/" + pointer(key)).put("value", value);
            } else if (currentLabels.containsKey(key)) {
                patch.addObject().put("op", "remove").put("path", "/metadata/labels/" + pointer(key));
            }
        });
        patch.addObject().put("op", "add").put("path", "/metadata/annotations/" + pointer(AGENT_ANNOTATION)).put("value", annotation);
        client.nodes().withName(report.node()).patch(PatchContext.of(PatchType.JSON), patch.toString());
    }

    private static String pointer(String key) {
        return key.replace("~", "~0").replace("/", "~1");
    }

    private String annotation(NodeAgentReport report) {
        ObjectNode detail = json.createObjectNode();
        detail.put("ready", report.ready());
        if (report.pod() != null) {
            detail.put("pod", namespace + "/" + report.pod());
        }
        if (report.reason() != null) {
            detail.put("reason", report.reason());
        }
        if (report.capabilities() != null) {
            detail.set("capabilities", json.valueToTree(report.capabilities()));
        }
        return detail.toString();
    }

    static boolean ready(Pod pod) {
        var status = pod.getStatus();
        return status != null && "Running".equals(status.getPhase()) && status.getConditions() != null
                && status.getConditions().stream().anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
    }

    /** A label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric ("NVIDIA H100 80GB" → NVIDIA-H100-80GB). */
    static String labelValue(String raw) {
        if (raw == null) {
            return null;
        }
        String value = raw.replaceAll("[^A-Za-z0-9._-]+", "-");
        if (value.length() > 63) {
            value = value.substring(0, 63);
        }
        value = value.replaceAll("^[^A-Za-z0-9]+", "").replaceAll("[^A-Za-z0-9]+$", "");
        return value.isEmpty() ? null : value;
    }
}
