package io.vllmsnap.agent.container;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.jobs.AgentMetrics;
import io.vllmsnap.agent.jobs.JobRunner;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;

/**
 * A minimal agent process for the kill test: the agent's job machinery (no HTTP) on the given node storage, started
 * with one snapshot job; the test kills it, CRIU included, in the middle of the dump.
 * Arguments: storage root, pod UID, container ID, image ID.
 */
public final class AgentProcessMain {

    public static void main(String[] args) throws Exception {
        Path storage = Path.of(args[0]);
        JobRunner runner = new JobRunner(new JobStore(storage.resolve("jobs")), new ImageStore(storage.resolve("images")),
                new ContainerDiscovery(EmulatedNode.CGROUP_ROOT, Path.of("/proc")),
                new CriuContainerCheckpointer("criu", EmulatedNode.CGROUP_ROOT, Duration.ofMinutes(2), Duration.ofSeconds(30)),
                new AgentMetrics(new SimpleMeterRegistry()), storage.resolve("work"), 1, Clock.systemUTC());
        runner.recover();
        runner.submitSnapshot(new SnapshotJobRequest("snap-killed", "team-a", args[3], args[1], "vllm", args[2], 0, true,
                EmulatedNode.PORT));
        Thread.sleep(Duration.ofMinutes(5));
    }
}
