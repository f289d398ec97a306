package io.vllmsnap.agent;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;

import java.nio.file.Path;
import java.time.Duration;

/** Settings of the node agent ({@code vllmsnap.agent.*}); set under the {@code %agent.} profile. */
@ConfigMapping(prefix = "vllmsnap.agent")
public interface AgentConfig {

    /** True only in agent mode: the API is served and jobs run. False in every other mode. */
    @WithDefault("false")
    boolean enabled();

    /** Node storage: job records under {@code jobs/}, images under {@code images/<namespace>/<imageId>}. */
    @WithDefault("/var/lib/vllmsnap")
    Path storageRoot();

    /** Where the node's cgroup hierarchy is mounted (tests point this at a fake tree). */
    @WithDefault("/sys/fs/cgroup")
    Path cgroupRoot();

    /** The host's /proc (the agent runs with hostPID). */
    @WithDefault("/proc")
    Path procRoot();

    /** The only identity allowed to call the API, as TokenReview reports it. */
    @WithDefault("system:serviceaccount:vllmsnap-system:vllmsnap-operator")
    String allowedUser();

    /** How long a TokenReview answer is trusted before the token is checked again. */
    @WithDefault("60s")
    Duration tokenCacheTtl();

    /** Jobs running at once on this node; further jobs wait in the queue. */
    @WithDefault("1")
    int maxConcurrentJobs();

    /** Name of this node (from the downward API). */
    @WithDefault("unknown")
    String nodeName();

    /** The CRIU binary (4.2.1 or newer on kernels >= 6.16). */
    @WithDefault("criu")
    String criuBinary();

    /** Longest a single CRIU dump or restore may run before it is killed. */
    @WithDefault("10m")
    Duration criuTimeout();

    /** Longest a restored server may take to listen on its port again. */
    @WithDefault("60s")
    Duration readyTimeout();
}
