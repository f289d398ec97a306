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

    /**
     * The audience a caller's token must be bound to: the operator sends a projected service-account token made for
     * this audience alone, which the API server itself refuses, and the TokenReview asks for exactly this audience.
     */
    @WithDefault("vllmsnap-agent")
    String tokenAudience();

    /** How long a TokenReview answer is trusted before the token is checked again (never past the token's expiry). */
    @WithDefault("60s")
    Duration tokenCacheTtl();

    /** How many refused tokens are remembered (least recently used go first); approvals are kept apart. */
    @WithDefault("1024")
    int tokenCacheSize();

    /** Requests per second one client address may make without an approved token (each may cost a TokenReview). */
    @WithDefault("5")
    double clientRequestsPerSecond();

    /** How many such requests a client address may make at once before {@link #clientRequestsPerSecond()} applies. */
    @WithDefault("20")
    int clientBurst();

    /** Largest request body accepted, in bytes (the API takes small JSON documents). */
    @WithDefault("65536")
    int maxBodyBytes();

    /** How long the record of a finished job is kept on the node. */
    @WithDefault("7d")
    Duration jobRetention();

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
