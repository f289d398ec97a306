package io.vllmsnap.operator;

import io.quarkus.arc.DefaultBean;
import io.vllmsnap.agent.api.NodeAgents;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Used only when no other {@link NodeAgents} bean exists (the agent HTTP client provides the real one): it knows no
 * agent, so snapshots wait with the condition {@code NoAgentOnNode} instead of the operator failing to start.
 */
@ApplicationScoped
public class DefaultNodeAgentsProducer {
    private static final Logger LOG = Logger.getLogger(DefaultNodeAgentsProducer.class);

    @Produces
    @DefaultBean
    @ApplicationScoped
    NodeAgents noAgents() {
        LOG.warn("no NodeAgents client is installed: every node is reported as running no vllmsnap agent");
        return node -> Optional.empty();
    }
}
