package io.vllmsnap.agent.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.arc.DefaultBean;
import io.vllmsnap.agent.api.NodeAgents;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** Makes the HTTPS {@link NodeAgents} available to the operator; tests of the operator replace it with a fake. */
@Singleton
public class AgentClientBeans {

    static final Duration CA_RELOAD_INTERVAL = Duration.ofSeconds(30);

    @Produces
    @Singleton
    @DefaultBean
    AgentAddresses agentAddresses(KubernetesClient client, AgentClientConfig config, AgentPeers peers) {
        return new DaemonSetAgentAddresses(client, config.namespace(), parseSelector(config.podSelector()), config.port(), peers);
    }

    /** Which agent pod is behind an address, for certificates that name their pod (see {@link AgentTls}). */
    @Produces
    @Singleton
    AgentPeers agentPeers() {
        return new AgentPeers();
    }

    @Produces
    @Singleton
    @DefaultBean
    NodeAgents nodeAgents(AgentAddresses addresses, AgentClientConfig config, AgentPeers peers, ObjectMapper json)
            throws IOException, GeneralSecurityException {
        // A renewed CA is picked up within this time; the agents' own certificates are reloaded by the agents.
        return new HttpNodeAgents(addresses, AgentTls.context(config.caFile(), config.serverName(), CA_RELOAD_INTERVAL, peers),
                config.tokenFile(), json, config.connectTimeout(), config.requestTimeout());
    }

    static Map<String, String> parseSelector(String selector) {
        Map<String, String> labels = new LinkedHashMap<>();
        for (String part : selector.split(",")) {
            String[] kv = part.trim().split("=", 2);
            if (kv.length != 2 || kv[0].isBlank()) {
                throw new IllegalArgumentException("vllmsnap.agent-client.pod-selector: expected key=value, got \"" + part + "\"");
            }
            labels.put(kv[0].trim(), kv[1].trim());
        }
        return labels;
    }
}
