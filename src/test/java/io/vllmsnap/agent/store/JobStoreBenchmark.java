package io.vllmsnap.agent.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vllmsnap.agent.api.JobState;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.jobs.AgentMetrics;
import io.vllmsnap.agent.jobs.ContainerCheckpointer;
import io.vllmsnap.agent.jobs.JobRunner;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;

/**
 * How long a snapshot submission takes when the node already holds many job records (issue 16: 20,000 records
 * made every submit read them all under one lock). A benchmark, not a test: it runs only with
 * -Dvllmsnap.bench.jobstore=true, which bench/cpu/jobstore-submit.sh passes, and writes its numbers as JSON to the
 * file named by -Dvllmsnap.bench.out (default target/jobstore-submit.json).
 *
 * The records are terminal jobs, half of them older than the store's retention (they are what pruning removes),
 * written straight as files so that filling the store does not cost 20,000 fsyncs.
 */
@EnabledIfSystemProperty(named = "vllmsnap.bench.jobstore", matches = "true")
class JobStoreBenchmark {

    static final int RECORDS = Integer.getInteger("vllmsnap.bench.records", 20_000);
    static final int SUBMITS = Integer.getInteger("vllmsnap.bench.submits", 50);

    @Test
    void submitLatencyWithManyRecords() throws Exception {
        Path dir = Files.createTempDirectory("jobstore-bench");
        Path jobsDir = Files.createDirectories(dir.resolve("jobs"));
        Instant now = Instant.now();
        for (int i = 0; i < RECORDS; i++) {
            String id = "old-job-" + i;
            Instant accepted = i % 2 == 0 ? now.minus(Duration.ofDays(30)) : now.minus(Duration.ofMinutes(5));
            StoredJob job = JobStoreTest.job(id, JobState.SUCCEEDED);
            Path file = jobsDir.resolve(id + ".json");
            Json.MAPPER.writeValue(file.toFile(), new StoredJob(accepted, job.snapshot(), null, job.status()));
            Files.setLastModifiedTime(file, FileTime.from(accepted));
        }

        long startNanos = System.nanoTime();
        JobStore store = new JobStore(jobsDir);
        // An empty node: every submitted job fails at discovery, right after it was accepted. What is measured is
        // the submission, which the operator waits for.
        Path cgroups = Files.createDirectories(dir.resolve("cgroup"));
        Files.writeString(cgroups.resolve("cgroup.controllers"), "");
        JobRunner runner = new JobRunner(store, new ImageStore(dir.resolve("images")),
                new ContainerDiscovery(cgroups, Files.createDirectories(dir.resolve("proc"))), new NeverCalled(),
                new AgentMetrics(new SimpleMeterRegistry()), dir.resolve("work"), 1, Clock.systemUTC());
        runner.recover();
        double recoverSeconds = (System.nanoTime() - startNanos) / 1e9;

        double[] seconds = new double[SUBMITS];
        for (int i = 0; i < SUBMITS; i++) {
            SnapshotJobRequest request = new SnapshotJobRequest("new-job-" + i, "team-a", "new-img-" + i,
                    UUID.randomUUID().toString(), "vllm", "containerd://" + "b".repeat(64), 0, true, 8000);
            long t0 = System.nanoTime();
            runner.submitSnapshot(request);
            seconds[i] = (System.nanoTime() - t0) / 1e9;
        }
        runner.close();
        long left;
        try (var files = Files.list(jobsDir)) {
            left = files.filter(f -> f.toString().endsWith(".json")).count();
        }
        Arrays.sort(seconds);
        ObjectNode out = Json.MAPPER.createObjectNode();
        out.put("benchmark", "agent job submission with many job records on the node");
        out.put("records", RECORDS);
        out.put("submits", SUBMITS);
        out.put("recoverSeconds", recoverSeconds);
        out.put("submitMedianSeconds", seconds[SUBMITS / 2]);
        out.put("submitP90Seconds", seconds[(int) (SUBMITS * 0.9)]);
        out.put("submitMaxSeconds", seconds[SUBMITS - 1]);
        out.put("recordFilesLeft", left);
        out.put("cpuModel", cpuModel());
        out.put("loadAverage", Files.readString(Path.of("/proc/loadavg")).trim());
        Path result = Path.of(System.getProperty("vllmsnap.bench.out", "target/jobstore-submit.json"));
        Files.createDirectories(result.toAbsolutePath().getParent());
        Json.MAPPER.writerWithDefaultPrettyPrinter().writeValue(result.toFile(), out);
        System.out.println("jobstore benchmark: " + out);
        ImageStore.deleteTree(dir);
    }

    private static String cpuModel() throws Exception {
        return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                .map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("unknown");
    }

    /** Jobs fail at discovery on the empty node: the engine is never reached. */
    private static final class NeverCalled implements ContainerCheckpointer {
        @Override
        public SnapshotOutcome snapshot(io.vllmsnap.agent.discovery.DiscoveredContainer source, SnapshotJobRequest request,
                Path imageDir, Path workDir, PhaseListener phases) {
            throw new IllegalStateException("not reached");
        }

        @Override
        public RestoreOutcome restore(io.vllmsnap.agent.discovery.DiscoveredContainer placeholder,
                io.vllmsnap.agent.api.RestoreJobRequest request, Path imageDir, Path workDir, PhaseListener phases) {
            throw new IllegalStateException("not reached");
        }

        @Override
        public io.vllmsnap.agent.api.CompatibilityIdentity nodeIdentity() {
            return new io.vllmsnap.agent.api.CompatibilityIdentity("cpu", "none", "4.2.1", null, List.of());
        }
    }
}
