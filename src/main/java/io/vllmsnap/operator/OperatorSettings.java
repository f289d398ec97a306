package io.vllmsnap.operator;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;

/** Operator tuning, keys {@code vllmsnap.operator.*} of application.properties. */
@ConfigMapping(prefix = "vllmsnap.operator")
public interface OperatorSettings {

    /** Whether this process runs the controllers (false in the agent profile). */
    @WithDefault("true")
    boolean start();

    /**
     * Whether a Lease election picks the replica that writes (mirrors
     * {@code quarkus.operator-sdk.activate-leader-election-for-profiles}, which is fixed at build time).
     */
    @WithDefault("false")
    boolean leaderElection();

    /** How often a running agent job is polled. */
    @WithDefault("2s")
    Duration jobPollInterval();

    /** How often a resource waiting on something outside our watches (a pod starting, an agent coming up) is looked at. */
    @WithDefault("10s")
    Duration waitInterval();

    /** First delay after an agent could not be reached; doubled on every further failure. */
    @WithDefault("2s")
    Duration agentBackoffBase();

    @WithDefault("5m")
    Duration agentBackoffMax();

    /** First delay before a failed restore is replaced by a new pod; doubled on every further failure. */
    @WithDefault("5s")
    Duration restoreBackoffBase();

    @WithDefault("5m")
    Duration restoreBackoffMax();

    /** Command of the placeholder container: keeps the pod's namespaces alive until the agent restores into it. */
    @WithDefault("sleep,infinity")
    List<String> placeholderCommand();
}
