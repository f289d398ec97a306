package io.vllmsnap.e2e;

import io.vllmsnap.agent.api.NodeAgent;
import io.vllmsnap.agent.api.NodeAgents;
import jakarta.enterprise.context.ApplicationScoped;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The operator's view of the agents in the end-to-end tests: the in-process agents of the emulated nodes, by node
 * name. Takes the place of the HTTPS client (a default bean) in {@link E2eProfile}, where the unit tests' fake is
 * excluded; elsewhere the unit tests' fake (an alternative) wins over it.
 */
@ApplicationScoped
public class E2eNodeAgents implements NodeAgents {
    private final Map<String, NodeAgent> agents = new ConcurrentHashMap<>();

    @Override
    public Optional<NodeAgent> forNode(String nodeName) {
        return Optional.ofNullable(nodeName).map(agents::get);
    }

    void put(String node, NodeAgent agent) {
        agents.put(node, agent);
    }

    void remove(String node) {
        agents.remove(node);
    }
}
