package io.vllmsnap.agent.jobs;

import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.DiscoveredContainer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Stands in for the engine in tests of the agent's own duties (queueing, records, storage, cleanup): writes
 * {@code snapshotBytes} of "image", and can hold a job inside a phase until released.
 */
class ScriptedCheckpointer implements ContainerCheckpointer {

    static final CompatibilityIdentity NODE = new CompatibilityIdentity("cpu-test", "none", "4.2.1", null, List.of());

    volatile int snapshotBytes = 64 * 1024;
    volatile CountDownLatch hold = new CountDownLatch(0);
    final CountDownLatch entered = new CountDownLatch(1);
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger maxRunning = new AtomicInteger();
    final List<DiscoveredContainer> seen = new CopyOnWriteArrayList<>();

    @Override
    public SnapshotOutcome snapshot(DiscoveredContainer source, SnapshotJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception {
        enter(source);
        try {
            phases.started("criu-dump");
            Files.write(imageDir.resolve("pages-1.img"), new byte[snapshotBytes]);
            hold.await();
            phases.finished("criu-dump", 5);
            return new SnapshotOutcome(NODE, List.of());
        } finally {
            running.decrementAndGet();
        }
    }

    @Override
    public RestoreOutcome restore(DiscoveredContainer placeholder, RestoreJobRequest request, Path imageDir, Path workDir,
            PhaseListener phases) throws Exception {
        enter(placeholder);
        try {
            phases.started("criu-restore");
            if (!Files.isRegularFile(imageDir.resolve("pages-1.img"))) {
                throw new IllegalStateException("image files missing in " + imageDir);
            }
            hold.await();
            phases.finished("criu-restore", 3);
            return new RestoreOutcome(List.of());
        } finally {
            running.decrementAndGet();
        }
    }

    private void enter(DiscoveredContainer c) {
        seen.add(c);
        maxRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
        entered.countDown();
    }

    @Override
    public CompatibilityIdentity nodeIdentity() {
        return NODE;
    }
}
