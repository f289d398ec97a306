package io.vllmsnap.agent.container;

import com.fasterxml.jackson.databind.JsonNode;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.jobs.AgentMetrics;
import io.vllmsnap.agent.jobs.JobRunner;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The agent's jobs with real CRIU on emulated pods (root required): disk full mid-dump, two restores of one image. */
class ContainerJobsRealCriuTest {

    static final Path WORK = Path.of("target/agent-it").toAbsolutePath();
    EmulatedNode node;
    JobRunner runner;
    Path storage;
    Path tmpfs;

    @BeforeEach
    void setUp() throws Exception {
        node = new EmulatedNode();
        Files.createDirectories(WORK);
        storage = Files.createTempDirectory(WORK, "storage");
    }

    JobRunner runner(Path storageRoot, int concurrency) throws Exception {
        runner = new JobRunner(new JobStore(storageRoot.resolve("jobs")), new ImageStore(storageRoot.resolve("images")),
                new ContainerDiscovery(EmulatedNode.CGROUP_ROOT, Path.of("/proc")),
                new CriuContainerCheckpointer("criu", EmulatedNode.CGROUP_ROOT, Duration.ofMinutes(2), Duration.ofSeconds(30)),
                new AgentMetrics(new SimpleMeterRegistry()), storageRoot.resolve("work"), concurrency, Clock.systemUTC());
        runner.recover();
        return runner;
    }

    JobStatus awaitDone(String jobId) {
        await().atMost(120, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(100)).until(() -> runner.status(jobId).state().isTerminal());
        return runner.status(jobId);
    }

    static SnapshotJobRequest snapshot(String jobId, EmulatedNode.Pod pod, String imageId) {
        return new SnapshotJobRequest(jobId, "team-a", imageId, pod.uid(), "vllm", pod.containerRef(), 0, true, EmulatedNode.PORT);
    }

    @Test
    void diskFullDuringDumpFailsCleanlyAndTheSourceKeepsServing() throws Exception {
        EmulatedNode.Pod source = node.pod();
        node.startServer(source, WORK.resolve("weights-16m"), "16MiB", "64MiB");
        tmpfs = Files.createDirectories(storage.resolve("small"));
        EmulatedNode.run("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", tmpfs.toString());
        runner(tmpfs, 1);

        runner.submitSnapshot(snapshot("snap-full", source, "warm-1"));
        JobStatus done = awaitDone("snap-full");

        assertThat(done.state()).isEqualTo(JobState.FAILED);
        assertThat(done.errorReason()).as(done.errorMessage()).isEqualTo("NoSpaceLeft");
        assertThat(new ImageStore(tmpfs.resolve("images")).partialDir("team-a", "warm-1")).doesNotExist();
        assertThat(new ImageStore(tmpfs.resolve("images")).list("team-a")).isEmpty();
        assertThat(EmulatedNode.answers(source)).as("source still serves").isTrue();
    }

    @Test
    void twoRestoresOfOneImageAtOnceEachServeTheSnapshotState() throws Exception {
        EmulatedNode.Pod source = node.pod();
        node.startServer(source, WORK.resolve("weights-16m"), "16MiB", "64MiB");
        EmulatedNode.complete(source, "warm up");
        JsonNode before = EmulatedNode.get(source, "/state");
        runner(storage, 2);
        runner.submitSnapshot(snapshot("snap-1", source, "warm-1"));
        assertThat(awaitDone("snap-1").state()).as(runner.status("snap-1").errorMessage()).isEqualTo(JobState.SUCCEEDED);
        EmulatedNode.Pod first = node.pod();
        EmulatedNode.Pod second = node.pod();
        node.startPlaceholder(first);
        node.startPlaceholder(second);

        runner.submitRestore(new RestoreJobRequest("r-1", "team-a", "warm-1", first.uid(), "vllm", first.containerRef(), EmulatedNode.PORT, null));
        runner.submitRestore(new RestoreJobRequest("r-2", "team-a", "warm-1", second.uid(), "vllm", second.containerRef(), EmulatedNode.PORT, null));

        for (String job : new String[] {"r-1", "r-2"}) {
            JobStatus s = awaitDone(job);
            assertThat(s.state()).as(s.errorMessage()).isEqualTo(JobState.SUCCEEDED);
            assertThat(s.phaseMillis()).containsKeys("discover", "criu-restore", "ready");
        }
        for (EmulatedNode.Pod target : new EmulatedNode.Pod[] {first, second}) {
            JsonNode restored = EmulatedNode.get(target, "/state");
            assertThat(restored.get("counter")).isEqualTo(before.get("counter"));
            assertThat(restored.get("kv_sha256")).isEqualTo(before.get("kv_sha256"));
            assertThat(restored.get("kernels_sha256")).isEqualTo(before.get("kernels_sha256"));
        }
        // the copies are independent: a request to one does not move the other
        EmulatedNode.complete(first, "only first");
        assertThat(EmulatedNode.get(second, "/state").get("counter")).isEqualTo(before.get("counter"));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (runner != null) {
            runner.close();
        }
        node.close();
        if (tmpfs != null) {
            EmulatedNode.run("umount", "--lazy", tmpfs.toString());
        }
        ImageStore.deleteTree(storage);
    }
}
