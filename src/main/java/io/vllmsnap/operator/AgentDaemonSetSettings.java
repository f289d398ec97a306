package io.vllmsnap.operator;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;

/**
 * Who keeps the agent DaemonSet and where its desired state is, keys {@code vllmsnap.daemonset.*}. The chart sets
 * them through VLLMSNAP_DAEMONSET_MANAGED_BY, VLLMSNAP_DAEMONSET_NAME and VLLMSNAP_DAEMONSET_CONFIGMAP
 * (docs/install.md); the namespace is the operator's own (POD_NAMESPACE).
 */
@ConfigMapping(prefix = "vllmsnap.daemonset")
public interface AgentDaemonSetSettings {

    /** Who writes the DaemonSet: the operator (from the ConfigMap) or the chart (the operator only reads it). */
    @WithDefault("operator")
    ManagedBy managedBy();

    @WithDefault("vllmsnap-agent")
    String name();

    /** ConfigMap whose key {@value AgentDaemonSetKeeper#DESIRED_KEY} holds the desired DaemonSet as YAML. */
    @WithDefault("vllmsnap-agent-daemonset")
    String configmap();

    @WithDefault("vllmsnap-system")
    String namespace();

    /** How often the DaemonSet is compared with its desired state even when no watch event came. */
    @WithDefault("60s")
    Duration resyncInterval();

    /** How often every ready agent is asked what it can do, and the node report refreshed. */
    @WithDefault("60s")
    Duration reportInterval();

    enum ManagedBy {
        OPERATOR,
        CHART
    }
}
