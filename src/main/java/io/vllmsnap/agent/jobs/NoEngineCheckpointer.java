package io.vllmsnap.agent.jobs;

import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.DiscoveredContainer;

import java.nio.file.Path;
import java.util.List;

/** Used only while no checkpoint engine is built in: every job fails with a clear reason instead of pretending. */
public class NoEngineCheckpointer implements ContainerCheckpointer {

    @Override
    public SnapshotOutcome snapshot(DiscoveredContainer source, SnapshotJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) {
        throw new JobFailedException("EngineUnavailable", "this agent build has no checkpoint engine");
    }

    @Override
    public RestoreOutcome restore(DiscoveredContainer placeholder, RestoreJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) {
        throw new JobFailedException("EngineUnavailable", "this agent build has no checkpoint engine");
    }

    @Override
    public CompatibilityIdentity nodeIdentity() {
        return new CompatibilityIdentity(null, null, null, null, List.of());
    }
}
