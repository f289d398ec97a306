package io.vllmsnap.agent.client;

import java.net.URI;
import java.util.Optional;

/** Where the agent of a node listens. Production: the agent pod on that node; tests: a fixed address. */
public interface AgentAddresses {

    /** @return the agent's base URI (for example {@code https://10.0.3.7:8443}), or empty when none runs there */
    Optional<URI> forNode(String nodeName);
}
