package io.vllmsnap.agent.client;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.arc.DefaultBean;
import io.vllmsnap.agent.api.NodeAgents;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.util.LinkedHashMap;
import java.util.Map;

/** Makes the HTTPS {@link NodeAgents} available to the operator; tests of the operator replace it with a fake. */
@Singleton
public class AgentClientBeans {

    @Produces
    @Singleton
    @DefaultBean
    AgentAddresses agentAddresses(KubernetesClient client, AgentClientConfig config) {
        return new DaemonSetAgentAddresses(client, config.namespace(), parseSelector(config.podSelector()), config.port());
    }

    @Produces
    @Singleton
    @DefaultBean
    NodeAgents nodeAgents(AgentAddresses addresses, AgentClientConfig config, ObjectMapper json)
            throws IOException, GeneralSecurityException {
        return new HttpNodeAgents(addresses, AgentTls.context(config.caFile(), config.serverName()), config.tokenFile(), json,
                config.connectTimeout(), config.requestTimeout());
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
