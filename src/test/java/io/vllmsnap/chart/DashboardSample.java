package io.vllmsnap.chart;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import io.vllmsnap.criu.Criu;
import io.vllmsnap.engine.Checkpointer;
import io.vllmsnap.engine.JobLimiter;
import io.vllmsnap.engine.Manifest;
import io.vllmsnap.engine.NoGpuCheckpointer;
import io.vllmsnap.engine.Processes;
import io.vllmsnap.engine.Progress;
import io.vllmsnap.engine.RestoreRequest;
import io.vllmsnap.engine.RestoreResult;
import io.vllmsnap.engine.Restorer;
import io.vllmsnap.engine.SnapshotRequest;
import io.vllmsnap.engine.SourceLauncher;
import io.vllmsnap.engine.StandInServer;
import io.vllmsnap.engine.VllmClient;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Sample data for the dashboard picture (docs/img/dashboard-sample.png): real snapshots and restores of the CPU
 * stand-in server with real CRIU, recorded under the metric names and histogram settings the operator uses, and
 * written as a Prometheus scrape to target/dashboard-sample/metrics.txt. hack/render-dashboard-sample.py then
 * evaluates the dashboard's queries on it. A generator, not a test: it runs only when asked for with
 * -Dvllmsnap.dashboardSample=true, which `make dashboard-sample` passes (root, CRIU, about a minute).
 */
@org.junit.jupiter.api.condition.EnabledIfSystemProperty(named = "vllmsnap.dashboardSample", matches = "true")
class DashboardSample {

    static final long MIB = 1 << 20;
    static final int RESTORES = Integer.getInteger("vllmsnap.sample.restores", 12);
    static final int COLD_STARTS = Integer.getInteger("vllmsnap.sample.coldStarts", 3);

    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    @Test
    void recordRealRestores() throws Exception {
        Path out = ChartFiles.ROOT.resolve("target/dashboard-sample");
        Files.createDirectories(out);
        Path work = out.resolve("work");
        int port = 18190;
        StandInServer.Config config = new StandInServer.Config(port, work.resolve("weights"), 256 * MIB, 64 * MIB, 2);
        StandInServer.prepareWeights(config);
        Criu criu = Criu.fromEnvironment();
        JobLimiter limiter = new JobLimiter(1);
        Checkpointer checkpointer = new Checkpointer(criu, new NoGpuCheckpointer(), limiter);
        Restorer restorer = new Restorer(criu, new NoGpuCheckpointer(), limiter);

        StringBuilder coldStarts = new StringBuilder();
        for (int i = 0; i < COLD_STARTS; i++) {
            long start = System.nanoTime();
            SourceLauncher.Source s = StandInServer.start(config, Duration.ofMinutes(2));
            new VllmClient(port).complete("cold", 1);
            coldStarts.append((System.nanoTime() - start) / 1e9).append('\n');
            s.stop();
            Processes.awaitGone(s.pid(), Duration.ofSeconds(30));
        }
        Files.writeString(out.resolve("cold-start-seconds.txt"), coldStarts);

        SourceLauncher.Source source = StandInServer.start(config, Duration.ofMinutes(2));
        new VllmClient(port).complete("warm up", 4);
        Path image = work.resolve("image-" + System.nanoTime());
        long t0 = System.nanoTime();
        Manifest m = checkpointer.snapshot(SnapshotRequest.of(source.pid(), image, port, 2, false), Progress.NONE);
        snapshotFinished(m.phaseSeconds(), (System.nanoTime() - t0) / 1e9, m.sizeBytes());
        Processes.awaitGone(source.pid(), Duration.ofSeconds(30));

        for (int i = 0; i < RESTORES; i++) {
            RestoreResult r = restorer.restore(RestoreRequest.of(image), Progress.NONE);
            restoreFinished(r.phaseSeconds(), r.totalSeconds());
            Processes.kill(r.pid());
            Processes.awaitGone(r.pid(), Duration.ofSeconds(30));
        }
        Files.writeString(out.resolve("metrics.txt"), registry.scrape());
    }

    // Same names, tags and histogram settings as io.vllmsnap.metrics.VllmsnapMetrics of the operator.
    private void restoreFinished(Map<String, Double> phases, double total) {
        phases.forEach((phase, s) -> timer("vllmsnap.restore.duration", phase).record(Duration.ofNanos((long) (s * 1e9))));
        timer("vllmsnap.restore.duration", "total").record(Duration.ofNanos((long) (total * 1e9)));
        Counter.builder("vllmsnap.restores").tag("result", "success").tag("path", "Restore").register(registry).increment();
    }

    private void snapshotFinished(Map<String, Double> phases, double total, long sizeBytes) {
        phases.forEach((phase, s) -> timer("vllmsnap.snapshot.duration", phase).record(Duration.ofNanos((long) (s * 1e9))));
        timer("vllmsnap.snapshot.duration", "total").record(Duration.ofNanos((long) (total * 1e9)));
        Counter.builder("vllmsnap.snapshots").tag("result", "success").register(registry).increment();
        DistributionSummary.builder("vllmsnap.snapshot.size").baseUnit("bytes").register(registry).record(sizeBytes);
    }

    private Timer timer(String name, String phase) {
        return Timer.builder(name).tag("phase", phase).tag("result", "success").publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(50)).maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry);
    }
}
