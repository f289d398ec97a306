package io.vllmsnap.agent.jobs;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vllmsnap.agent.InvalidIdException;
import io.vllmsnap.agent.api.AgentRejectedException;
import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

class JobRunnerTest {

    static final String SOURCE_POD = "3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b";
    static final String TARGET_POD = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d";
    static final String SECOND_TARGET_POD = "99999999-3e2f-4a1b-9c8d-7e6f5a4b3c2d";
    static final String SOURCE_CID = "a".repeat(64);
    static final String TARGET_CID = "b".repeat(64);
    static final String SECOND_TARGET_CID = "c".repeat(64);

    @TempDir
    Path dir;
    FakeNode node;
    Path storage;
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    ScriptedCheckpointer engine = new ScriptedCheckpointer();
    final List<JobRunner> runners = new ArrayList<>();
    Path tmpfs;

    @BeforeEach
    void setUp() throws IOException {
        node = new FakeNode(dir);
        node.addContainer(SOURCE_POD, SOURCE_CID);
        node.addContainer(TARGET_POD, TARGET_CID);
        node.addContainer(SECOND_TARGET_POD, SECOND_TARGET_CID);
        storage = dir.resolve("storage");
    }

    JobRunner start(ContainerCheckpointer checkpointer, int concurrency) throws IOException {
        JobRunner runner = new JobRunner(new JobStore(storage.resolve("jobs")), images(),
                new ContainerDiscovery(node.cgroupRoot, node.procRoot), checkpointer, new AgentMetrics(registry),
                storage.resolve("work"), concurrency, Clock.systemUTC());
        runners.add(runner);
        runner.recover();
        return runner;
    }

    ImageStore images() {
        return new ImageStore(storage.resolve("images"));
    }

    static SnapshotJobRequest snapshot(String jobId, String ns, String imageId) {
        return snapshotOf(jobId, ns, imageId, SOURCE_POD, SOURCE_CID);
    }

    static SnapshotJobRequest snapshotOf(String jobId, String ns, String imageId, String pod, String cid) {
        return new SnapshotJobRequest(jobId, ns, imageId, pod, "vllm", "containerd://" + cid, 0, true, 8000);
    }

    static RestoreJobRequest restore(String jobId, String ns, String imageId, String pod, String cid) {
        return new RestoreJobRequest(jobId, ns, imageId, pod, "vllm", "containerd://" + cid, 8000, null);
    }

    JobStatus awaitDone(JobRunner runner, String jobId) {
        await().atMost(20, TimeUnit.SECONDS).until(() -> runner.status(jobId).state().isTerminal());
        return runner.status(jobId);
    }

    @Test
    void snapshotWritesAPrivateCompleteImageAndRecordsPhases() throws Exception {
        JobRunner runner = start(engine, 1);

        JobStatus accepted = runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        JobStatus done = awaitDone(runner, "snap-1");

        assertThat(accepted.state()).isIn(JobState.QUEUED, JobState.RUNNING);
        assertThat(done.state()).as(done.errorMessage()).isEqualTo(JobState.SUCCEEDED);
        assertThat(done.phaseMillis()).containsKeys("discover", "criu-dump", "finalize");
        assertThat(done.sizeBytes()).isGreaterThanOrEqualTo(engine.snapshotBytes);
        assertThat(engine.seen.getFirst().cgroup().toString()).contains(SOURCE_CID);
        assertThat(images().list("team-a")).singleElement().satisfies(i -> assertThat(i.imageId()).isEqualTo("warm-1"));
        assertThat(images().list("team-b")).isEmpty();
        for (Path p : List.of(storage.resolve("images"), storage.resolve("images/team-a"), storage.resolve("images/team-a/warm-1"))) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p))).as(p.toString()).isEqualTo("rwx------");
        }
        assertThat(registry.get("vllmsnap.agent.image.written.bytes").counter().count()).isGreaterThanOrEqualTo(engine.snapshotBytes);
        assertThat(registry.get("vllmsnap.agent.job.phase.duration").tag("phase", "criu-dump").timer().count()).isEqualTo(1);
    }

    @Test
    void repeatedRequestFindsTheSameJobAndADifferentOneUnderItsIdIsRefused() throws Exception {
        JobRunner runner = start(engine, 1);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));

        assertThat(runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1")).jobId()).isEqualTo("snap-1");
        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("snap-1", "team-a", "other")))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("JobIdInUse"));
        awaitDone(runner, "snap-1");
        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("snap-2", "team-a", "warm-1")))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("ImageExists"));
    }

    @Test
    void badIdsAreRefusedBeforeAnythingIsWritten() throws Exception {
        JobRunner runner = start(engine, 1);

        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("snap-1", "../etc", "warm-1"))).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("snap-1", "team-a", "../../root"))).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("Snap-1", "team-a", "warm-1"))).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> runner.submitRestore(restore("r-1", "team-a", "warm-1", "../" + TARGET_POD, TARGET_CID)))
                .isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> runner.deleteImage("team-a", "..")).isInstanceOf(InvalidIdException.class);
        assertThat(Files.exists(storage.resolve("jobs"))).isFalse();
    }

    @Test
    void restoreReadsOnlyImagesOfItsOwnNamespace() throws Exception {
        JobRunner runner = start(engine, 1);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        awaitDone(runner, "snap-1");

        assertThatThrownBy(() -> runner.submitRestore(restore("r-1", "team-b", "warm-1", TARGET_POD, TARGET_CID)))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("ImageNotFound"));

        runner.submitRestore(restore("r-2", "team-a", "warm-1", TARGET_POD, TARGET_CID));
        assertThat(awaitDone(runner, "r-2").state()).isEqualTo(JobState.SUCCEEDED);
        assertThat(engine.seen.getLast().cgroup().toString()).contains(TARGET_CID);
        assertThat(registry.get("vllmsnap.agent.image.read.bytes").counter().count()).isGreaterThan(0);
    }

    @Test
    void incompatibleNodeIsRefusedBeforeAByteMoves() throws Exception {
        JobRunner runner = start(engine, 1);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        awaitDone(runner, "snap-1");
        var expected = new CompatibilityIdentity("H100", null, "4.2.1", null, List.of());

        assertThatThrownBy(() -> runner.submitRestore(new RestoreJobRequest("r-1", "team-a", "warm-1", TARGET_POD, "vllm",
                "containerd://" + TARGET_CID, 8000, expected)))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> {
                    assertThat(e.reason()).isEqualTo("Incompatible");
                    assertThat(e.getMessage()).contains("GPU model", "H100", "cpu-test");
                });
        assertThat(runner.status("r-1")).isNull();
    }

    @Test
    void jobRunningWhenTheAgentDiedIsReportedFailedAndItsPartialFilesRemoved() throws Exception {
        engine.hold = new CountDownLatch(1); // the first agent never gets past the dump: it "dies" there
        JobRunner first = start(engine, 1);
        first.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        assertThat(engine.entered.await(10, TimeUnit.SECONDS)).isTrue();
        Path partial = images().partialDir("team-a", "warm-1");
        await().atMost(10, TimeUnit.SECONDS).until(() -> Files.exists(partial.resolve("pages-1.img")));
        assertThat(first.status("snap-1").state()).isEqualTo(JobState.RUNNING);

        // A new agent process on the same node storage.
        JobRunner second = start(new ScriptedCheckpointer(), 1);

        JobStatus after = second.status("snap-1");
        assertThat(after.state()).isEqualTo(JobState.FAILED);
        assertThat(after.errorReason()).isEqualTo(JobRunner.AGENT_RESTARTED);
        assertThat(after.errorMessage()).contains("criu-dump");
        assertThat(partial).doesNotExist();
        assertThat(images().list("team-a")).isEmpty();
        engine.hold.countDown();
    }

    @Test
    void diskFullDuringDumpFailsTheJobCleanlyAndLeavesNoImage() throws Exception {
        tmpfs = Files.createDirectories(dir.resolve("small"));
        run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", tmpfs.toString());
        storage = tmpfs;
        engine.snapshotBytes = 4 * 1024 * 1024;
        JobRunner runner = start(engine, 1);

        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        JobStatus done = awaitDone(runner, "snap-1");

        assertThat(done.state()).isEqualTo(JobState.FAILED);
        assertThat(done.errorReason()).isEqualTo("NoSpaceLeft");
        assertThat(images().partialDir("team-a", "warm-1")).doesNotExist();
        assertThat(images().list("team-a")).isEmpty();
        // the record itself survived: the operator learns why
        assertThat(new JobStore(storage.resolve("jobs")).find("snap-1")).isPresent();
    }

    @Test
    void twoRestoresOfOneImageRunAtOnceAndTheImageCannotBeDeletedMeanwhile() throws Exception {
        JobRunner runner = start(engine, 2);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        awaitDone(runner, "snap-1");
        engine.hold = new CountDownLatch(1);

        runner.submitRestore(restore("r-1", "team-a", "warm-1", TARGET_POD, TARGET_CID));
        runner.submitRestore(restore("r-2", "team-a", "warm-1", SECOND_TARGET_POD, SECOND_TARGET_CID));
        await().atMost(10, TimeUnit.SECONDS).until(() -> engine.running.get() == 2);
        assertThatThrownBy(() -> runner.deleteImage("team-a", "warm-1"))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> assertThat(e.reason()).isEqualTo("ImageInUse"));
        engine.hold.countDown();

        assertThat(awaitDone(runner, "r-1").state()).isEqualTo(JobState.SUCCEEDED);
        assertThat(awaitDone(runner, "r-2").state()).isEqualTo(JobState.SUCCEEDED);
        runner.deleteImage("team-a", "warm-1");
        assertThat(images().list("team-a")).isEmpty();
        runner.deleteImage("team-a", "warm-1"); // deleting what is gone succeeds
    }

    @Test
    void jobsBeyondTheLimitWaitInTheQueueWithTheirPosition() throws Exception {
        engine.hold = new CountDownLatch(1);
        JobRunner runner = start(engine, 1);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        assertThat(engine.entered.await(10, TimeUnit.SECONDS)).isTrue();
        runner.submitSnapshot(snapshotOf("snap-2", "team-a", "warm-2", TARGET_POD, TARGET_CID));
        runner.submitSnapshot(snapshotOf("snap-3", "team-a", "warm-3", SECOND_TARGET_POD, SECOND_TARGET_CID));

        assertThat(runner.status("snap-3").queuePosition()).isEqualTo(2);
        assertThat(runner.queueDepth()).isEqualTo(2);
        assertThat(registry.get("vllmsnap.agent.queue.depth").gauge().value()).isEqualTo(2.0);
        engine.hold.countDown();
        awaitDone(runner, "snap-3");
        assertThat(engine.maxRunning.get()).isEqualTo(1);
    }

    @Test
    void secondSnapshotOfABusySourceIsRefusedNotInterleaved() throws Exception {
        engine.hold = new CountDownLatch(1);
        JobRunner runner = start(engine, 2);
        runner.submitSnapshot(snapshot("snap-1", "team-a", "warm-1"));
        assertThat(engine.entered.await(10, TimeUnit.SECONDS)).isTrue();

        assertThatThrownBy(() -> runner.submitSnapshot(snapshot("snap-2", "team-a", "warm-2")))
                .isInstanceOfSatisfying(AgentRejectedException.class, e -> {
                    assertThat(e.reason()).isEqualTo("SourceBusy");
                    assertThat(e.getMessage()).contains("snap-1");
                });
        assertThat(runner.status("snap-2")).isNull();
        engine.hold.countDown();
        assertThat(awaitDone(runner, "snap-1").state()).isEqualTo(JobState.SUCCEEDED);
        // once the first is done, the same source may be snapshotted again
        runner.submitSnapshot(snapshot("snap-2", "team-a", "warm-2"));
        assertThat(awaitDone(runner, "snap-2").state()).isEqualTo(JobState.SUCCEEDED);
        assertThat(engine.maxRunning.get()).isEqualTo(1);
    }

    @Test
    void containerNotOnThisNodeFailsWithAClearReason() throws Exception {
        JobRunner runner = start(engine, 1);
        runner.submitSnapshot(new SnapshotJobRequest("snap-1", "team-a", "warm-1", "00000000-0000-4000-8000-000000000000",
                "vllm", "containerd://" + "d".repeat(64), 0, true, 8000));

        JobStatus done = awaitDone(runner, "snap-1");
        assertThat(done.errorReason()).isEqualTo("ContainerNotFound");
        assertThat(images().partialDir("team-a", "warm-1")).doesNotExist();
    }

    @AfterEach
    void tearDown() throws Exception {
        runners.forEach(JobRunner::close);
        if (tmpfs != null) {
            run("umount", tmpfs.toString());
        }
    }

    private static void run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", command) + " timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", command) + " failed: " + new String(p.getInputStream().readAllBytes()));
        }
    }
}
