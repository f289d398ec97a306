package io.vllmsnap.agent.client;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.nio.file.Path;
import java.time.Duration;

/** How the operator reaches node agents ({@code vllmsnap.agent-client.*}). */
@ConfigMapping(prefix = "vllmsnap.agent-client")
public interface AgentClientConfig {

    /** PEM file of the CA that signed the agents' certificate (mounted from a Secret). */
    @WithDefault("/etc/vllmsnap/agent-ca/ca.crt")
    Path caFile();

    /**
     * A projected service-account token of the operator made for the agents' audience only (the chart mounts it;
     * the API server refuses it), sent as bearer token. Never the operator's own API token: an agent, or whoever
     * holds a node, must not get a credential for the API server. Re-read on each call: kubelet rotates it.
     */
    @WithDefault("/var/run/secrets/vllmsnap/agent-token/token")
    Path tokenFile();

    /**
     * DNS name the agents' certificate must carry (agents are dialled by pod IP). With per-pod certificates it
     * contains {@code {pod}}, replaced by the name of the agent pod dialled (see {@link AgentTls}).
     */
    @WithDefault("vllmsnap-agent")
    String serverName();

    /** Namespace of the agent DaemonSet. */
    @WithDefault("vllmsnap-system")
    String namespace();

    /** Label selector of the agent pods, {@code key=value[,key=value]}. */
    @WithDefault("app.kubernetes.io/name=vllmsnap,app.kubernetes.io/component=agent")
    String podSelector();

    @WithDefault("8443")
    int port();

    @WithDefault("5s")
    Duration connectTimeout();

    @WithDefault("30s")
    Duration requestTimeout();
}
