package io.vllmsnap.agent.client;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;

import java.net.URI;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;

/**
 * Finds a node's agent among the agent DaemonSet's pods: selected by label, on that node, running, with a pod IP.
 * Pod IPs rather than a Service, because the call must reach the agent of one particular node.
 */
public class DaemonSetAgentAddresses implements AgentAddresses {

    private final KubernetesClient client;
    private final String namespace;
    private final Map<String, String> podLabels;
    private final int port;
    private final AgentPeers peers;

    public DaemonSetAgentAddresses(KubernetesClient client, String namespace, Map<String, String> podLabels, int port) {
        this(client, namespace, podLabels, port, AgentPeers.NONE);
    }

    /** @param peers told which agent pod each address returned belongs to (for per-pod certificate names) */
    public DaemonSetAgentAddresses(KubernetesClient client, String namespace, Map<String, String> podLabels, int port,
            AgentPeers peers) {
        this.client = client;
        this.namespace = namespace;
        this.podLabels = Map.copyOf(podLabels);
        this.port = port;
        this.peers = peers;
    }

    @Override
    public Optional<URI> forNode(String nodeName) {
        return client.pods().inNamespace(namespace).withLabels(podLabels).withField("spec.nodeName", nodeName).list()
                .getItems().stream()
                .filter(p -> nodeName.equals(p.getSpec().getNodeName()))
                .filter(DaemonSetAgentAddresses::runningWithIp)
                .filter(p -> p.getMetadata().getDeletionTimestamp() == null)
                // during a rollout two agent pods may briefly share a node: the newest one is the one staying
                .max(Comparator.comparing(p -> p.getMetadata().getCreationTimestamp(), Comparator.nullsFirst(Comparator.naturalOrder())))
                .map(p -> {
                    peers.record(p.getStatus().getPodIP(), p.getMetadata().getName());
                    return URI.create("https://" + hostPart(p.getStatus().getPodIP()) + ":" + port);
                });
    }

    private static boolean runningWithIp(Pod p) {
        return p.getStatus() != null && "Running".equals(p.getStatus().getPhase()) && p.getStatus().getPodIP() != null
                && !p.getStatus().getPodIP().isBlank();
    }

    private static String hostPart(String ip) {
        return ip.contains(":") ? "[" + ip + "]" : ip;
    }
}
