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

    /** The operator's service-account token, sent as bearer token; re-read on each call (projected tokens rotate). */
    @WithDefault("/var/run/secrets/kubernetes.io/serviceaccount/token")
    Path tokenFile();

    /** DNS name the agents' certificate must carry (agents are dialled by pod IP). */
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
