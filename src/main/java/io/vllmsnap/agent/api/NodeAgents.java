package io.vllmsnap.agent.api;

import java.util.Optional;

/** Finds the agent serving a node. */
public interface NodeAgents {

    /** @return the agent of the node, or empty when no agent runs there */
    Optional<NodeAgent> forNode(String nodeName);
}
