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

    RecordingGpu gpu = new RecordingGpu();

    JobRunner runner(Path storageRoot, int concurrency) throws Exception {
        runner = new JobRunner(new JobStore(storageRoot.resolve("jobs")), new ImageStore(storageRoot.resolve("images")),
                new ContainerDiscovery(EmulatedNode.CGROUP_ROOT, Path.of("/proc")),
                new CriuContainerCheckpointer("criu", EmulatedNode.CGROUP_ROOT, Duration.ofMinutes(2), Duration.ofSeconds(30), gpu),
                new AgentMetrics(new SimpleMeterRegistry()), storageRoot.resolve("work"), concurrency, Clock.systemUTC());
        runner.recover();
        return runner;
    }

    JobStatus awaitDone(String jobId) {
        await().atMost(120, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(100)).until(() -> runner.status(jobId).state().isTerminal());
        return runner.status(jobId);
    }

    /** A restore's total runs from the request's acceptance to its first token: it covers every phase, that one too. */
    static void assertTotalCoversEveryPhase(JobStatus s) {
        long named = s.phaseMillis().values().stream().mapToLong(Long::longValue).sum();
        assertThat(s.totalMillis()).isGreaterThanOrEqualTo(named)
                .isGreaterThanOrEqualTo(s.phaseMillis().get("first-token"));
        // What no phase names is only bookkeeping between phases (the job record written to disk, a few ms each);
        // waiting for a slot and the root bind are phases of their own.
        System.out.printf("job %s: %d ms, %d ms of it in no phase%n", s.jobId(), s.totalMillis(), s.totalMillis() - named);
        assertThat(s.totalMillis() - named).as("milliseconds of %s in no phase", s.jobId()).isLessThan(250);
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
        // its GPU state was checkpointed before the dump and given back after the failure
        assertThat(gpu.steps()).containsExactly("lock", "checkpoint", "restore", "unlock");
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
            assertThat(s.phaseMillis().keySet()).containsExactly("queued", "discover", "criu-restore", "gpu-restore", "ready", "first-token");
            assertTotalCoversEveryPhase(s);
            assertThat(s.gpus()).containsExactly("Test GPU/GPU-test-0");
        }
        // snapshot (source left running): lock + checkpoint, dump, then restore + unlock of the source;
        // each restore: restore + unlock of the restored server, a process of its placeholder
        JobStatus snap = runner.status("snap-1");
        assertThat(snap.phaseMillis().keySet()).containsExactly("queued", "discover", "gpu-checkpoint", "criu-dump", "resume-source", "finalize");
        assertThat(snap.identity().gpuModel()).isEqualTo("Test GPU");
        assertThat(gpu.steps().subList(0, 4)).containsExactly("lock", "checkpoint", "restore", "unlock");
        // the two restores run at once: their steps interleave, but each process is restored before it is unlocked
        assertThat(gpu.steps().subList(4, 8)).containsExactlyInAnyOrder("restore", "restore", "unlock", "unlock");
        for (RecordingGpu.Call c : gpu.calls.subList(4, 8)) {
            if (c.step().equals("unlock")) {
                assertThat(gpu.calls.subList(4, gpu.calls.indexOf(c))).contains(new RecordingGpu.Call("restore", c.pid()));
            }
        }
        long sourcePid = gpu.calls.getFirst().pid();
        assertThat(gpu.calls.subList(0, 4)).allSatisfy(c -> assertThat(c.pid()).isEqualTo(sourcePid));
        for (RecordingGpu.Call c : gpu.calls.subList(4, 8)) {
            assertThat(EmulatedNode.procs(first).contains((int) c.pid()) || EmulatedNode.procs(second).contains((int) c.pid()))
                    .as("GPU restore of %s in a placeholder's cgroup", c).isTrue();
        }
        // each copy served the restore's first-token request; the source (left running, not asked since) gets the
        // same request, and then each copy holds exactly the source's state: counter, KV pool, weights, kernels
        EmulatedNode.firstTokenProbe(source);
        JsonNode probed = EmulatedNode.get(source, "/state");
        assertThat(probed.get("counter").asInt()).isEqualTo(before.get("counter").asInt() + 1);
        for (EmulatedNode.Pod target : new EmulatedNode.Pod[] {first, second}) {
            JsonNode restored = EmulatedNode.get(target, "/state");
            assertThat(restored.get("counter")).isEqualTo(probed.get("counter"));
            assertThat(restored.get("kv_sha256")).isEqualTo(probed.get("kv_sha256"));
            assertThat(restored.get("weights_sha256")).isEqualTo(probed.get("weights_sha256"));
            assertThat(restored.get("kernels_sha256")).isEqualTo(probed.get("kernels_sha256"));
        }
        // the copies are independent: a request to one does not move the other
        EmulatedNode.complete(first, "only first");
        assertThat(EmulatedNode.get(second, "/state").get("counter")).isEqualTo(probed.get("counter"));
    }

    /**
     * A copy that answers /health but cannot give a token is no restored server: the restore fails with a reason of its
     * own, and the agent kills the copy it made (only that: the source serves on).
     */
    @Test
    void aRestoredCopyThatCannotGiveItsFirstTokenFailsTheRestoreAndIsKilled() throws Exception {
        EmulatedNode.Pod source = node.pod();
        node.startServer(source, WORK.resolve("weights-16m"), "16MiB", "64MiB");
        // put to sleep by its user and snapshotted as it is (sleep level 0: the agent neither sleeps nor wakes it);
        // asleep, like vLLM, it answers /health but refuses completions
        EmulatedNode.post(source, "/sleep?level=1");
        runner(storage, 1);
        runner.submitSnapshot(snapshot("snap-asleep", source, "asleep"));
        assertThat(awaitDone("snap-asleep").state()).as(runner.status("snap-asleep").errorMessage()).isEqualTo(JobState.SUCCEEDED);

        EmulatedNode.Pod target = node.pod();
        node.startPlaceholder(target);
        runner.submitRestore(new RestoreJobRequest("r-asleep", "team-a", "asleep", target.uid(), "vllm",
                target.containerRef(), EmulatedNode.PORT, null));
        JobStatus restore = awaitDone("r-asleep");

        assertThat(restore.state()).isEqualTo(JobState.FAILED);
        assertThat(restore.errorReason()).as(restore.errorMessage()).isEqualTo("FirstTokenFailed");
        assertThat(restore.errorMessage()).contains("completion answered HTTP 503");
        assertThat(restore.phaseMillis()).containsKey("ready").doesNotContainKey("first-token");
        await().atMost(30, TimeUnit.SECONDS).until(() -> !EmulatedNode.answers(target));
        assertThat(EmulatedNode.answers(source)).as("the source serves on").isTrue();
    }

    /**
     * Sleep level 2: the agent puts vLLM to sleep at the pod's address before the dump, wakes the source it leaves
     * running, and wakes the restored copy in the placeholder.
     */
    @Test
    void sleepingSnapshotWakesTheSourceAndTheRestoredCopy() throws Exception {
        EmulatedNode.Pod source = node.pod();
        node.startServer(source, WORK.resolve("weights-16m"), "16MiB", "64MiB");
        EmulatedNode.complete(source, "warm up");
        JsonNode before = EmulatedNode.get(source, "/state");
        runner(storage, 1);

        runner.submitSnapshot(new SnapshotJobRequest("snap-sleep", "team-a", "asleep", source.uid(), "vllm",
                source.containerRef(), 2, true, EmulatedNode.PORT));
        JobStatus snap = awaitDone("snap-sleep");
        assertThat(snap.state()).as(snap.errorMessage()).isEqualTo(JobState.SUCCEEDED);
        assertThat(snap.phaseMillis().keySet()).containsExactly("queued", "discover", "prepare", "gpu-checkpoint", "criu-dump",
                "resume-source", "finalize");
        assertThat(EmulatedNode.get(source, "/is_sleeping").path("is_sleeping").asBoolean()).isFalse();

        EmulatedNode.Pod target = node.pod();
        node.startPlaceholder(target);
        runner.submitRestore(new RestoreJobRequest("r-sleep", "team-a", "asleep", target.uid(), "vllm",
                target.containerRef(), EmulatedNode.PORT, null));
        JobStatus restore = awaitDone("r-sleep");
        assertThat(restore.state()).as(restore.errorMessage()).isEqualTo(JobState.SUCCEEDED);
        assertThat(restore.phaseMillis().keySet()).containsExactly("queued", "discover", "criu-restore", "gpu-restore", "wake", "ready",
                "first-token");
        assertTotalCoversEveryPhase(restore);
        // both woke with a fresh KV pool; the copy then served the first-token request, which the source now gets too
        EmulatedNode.firstTokenProbe(source);
        JsonNode probed = EmulatedNode.get(source, "/state");
        assertThat(probed.get("counter").asInt()).isEqualTo(before.get("counter").asInt() + 1);
        JsonNode after = EmulatedNode.get(target, "/state");
        assertThat(after.path("sleep_level").asInt()).isZero();
        assertThat(after.get("weights_sha256")).isEqualTo(before.get("weights_sha256"));
        assertThat(after.get("counter")).isEqualTo(probed.get("counter"));
        assertThat(after.get("kv_sha256")).isEqualTo(probed.get("kv_sha256"));
    }

    /**
     * The agent (here a JVM of its own in its own cgroup, as in its pod) is killed with CRIU in the middle of a dump;
     * the agent started again on the same node storage reports the job failed with AgentRestarted and has removed
     * the partial image.
     */
    @Test
    void agentKilledMidDumpThenRestartedReportsTheJobFailedAndCleansUp() throws Exception {
        EmulatedNode.Pod source = node.pod();
        node.startServer(source, WORK.resolve("weights-16m"), "16MiB", "256MiB");
        Path agentCgroup = Files.createDirectories(node.topCgroup().resolve("agent"));
        String java = ProcessHandle.current().info().command().orElse("java");
        Process agent = new ProcessBuilder("bash", "-c", "echo $$ > \"$1\" && shift && exec \"$@\"", "enter",
                agentCgroup.resolve("cgroup.procs").toString(), java, "-cp", System.getProperty("java.class.path"),
                AgentProcessMain.class.getName(), storage.toString(), source.uid(), source.containerRef(), "warm-1")
                .redirectErrorStream(true).redirectOutput(WORK.resolve("killed-agent.log").toFile()).start();
        try {
            // as soon as CRIU runs for it, kill the agent's whole cgroup, as the kubelet does with a pod
            await().atMost(60, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(2)).until(() -> criuRunsIn(agentCgroup));
            Files.writeString(agentCgroup.resolve("cgroup.kill"), "1");
            assertThat(agent.waitFor(30, TimeUnit.SECONDS)).isTrue();
        } finally {
            agent.destroyForcibly();
        }
        ImageStore images = new ImageStore(storage.resolve("images"));
        assertThat(new JobStore(storage.resolve("jobs")).find("snap-killed").orElseThrow().status().state()).isEqualTo(JobState.RUNNING);
        assertThat(images.partialDir("team-a", "warm-1")).as("the dump was cut off half-way").isDirectory();

        runner(storage, 1);

        JobStatus after = runner.status("snap-killed");
        assertThat(after.state()).isEqualTo(JobState.FAILED);
        assertThat(after.errorReason()).isEqualTo(JobRunner.AGENT_RESTARTED);
        assertThat(images.partialDir("team-a", "warm-1")).doesNotExist();
        assertThat(storage.resolve("work/snap-killed")).doesNotExist();
        assertThat(images.list("team-a")).isEmpty();
    }

    private static boolean criuRunsIn(Path cgroup) throws java.io.IOException {
        for (String pid : Files.readAllLines(cgroup.resolve("cgroup.procs"))) {
            try {
                String cmdline = new String(Files.readAllBytes(Path.of("/proc", pid.strip(), "cmdline")));
                if (cmdline.startsWith("criu\0dump")) {
                    return true;
                }
            } catch (java.io.IOException gone) {
                // exited meanwhile
            }
        }
        return false;
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
