package io.vllmsnap.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.vllmsnap.criu.Criu;
import io.vllmsnap.engine.EngineException;
import io.vllmsnap.engine.Manifest;
import io.vllmsnap.engine.Processes;
import io.vllmsnap.engine.RestoreRequest;
import io.vllmsnap.engine.RestoreResult;
import io.vllmsnap.engine.SnapshotRequest;
import io.vllmsnap.engine.SourceLauncher;
import io.vllmsnap.engine.StandInServer;
import io.vllmsnap.engine.VllmClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Start the stand-in vLLM server cold, snapshot it, stop it, restore it, and compare cold start"
                + " to first token with restore to first token.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--dir", defaultValue = "/var/tmp/vllmsnap-demo",
            description = "working directory for weights and images, on disk (default ${DEFAULT-VALUE})")
    Path dir;
    @Option(names = "--weights-mib", defaultValue = "2048", description = "weights size (default ${DEFAULT-VALUE})")
    long weightsMib;
    @Option(names = "--kv-mib", defaultValue = "512", description = "KV pool size (default ${DEFAULT-VALUE})")
    long kvMib;
    @Option(names = "--compile-rounds", defaultValue = "48",
            description = "the stand-in's start-up compile work (default ${DEFAULT-VALUE})")
    int compileRounds;
    @Option(names = "--sleep-level", defaultValue = "2", description = "sleep level at snapshot (default ${DEFAULT-VALUE})")
    int sleepLevel;
    @Option(names = "--port", defaultValue = "18500", description = "port of the stand-in (default ${DEFAULT-VALUE})")
    int port;
    @Option(names = "--json", description = "also write the results as JSON to this file")
    Path json;
    @Option(names = "--lazy-pages", description = "restore with criu lazy-pages (see vllmsnap restore --help)")
    boolean lazyPages;
    @Option(names = "--keep", description = "keep the image the demo made (for vllmsnap inspect); removed otherwise")
    boolean keep;

    @Override
    public Integer call() throws Exception {
        Files.createDirectories(dir);
        StandInServer.Config cfg = new StandInServer.Config(port, dir.resolve("weights-" + weightsMib + "m"),
                weightsMib << 20, kvMib << 20, compileRounds);
        System.out.println("preparing weights file (" + weightsMib + " MiB; not timed, a model download)");
        StandInServer.prepareWeights(cfg);

        System.out.println("1/3 cold start of the stand-in server");
        long t0 = System.nanoTime();
        SourceLauncher.Source src = StandInServer.start(cfg, Duration.ofMinutes(5));
        VllmClient client = new VllmClient(port);
        client.complete("hello", 1);
        double cold = (System.nanoTime() - t0) / 1e9;
        System.out.printf("    first token after %.3f s%n", cold);
        String stateBefore = client.getJson("/state").path("weights_sha256").asText();

        Path image = dir.resolve("image-" + System.currentTimeMillis());
        System.out.println("2/3 snapshot (sleep level " + sleepLevel + ", source stopped afterwards) → " + image);
        Manifest m;
        try {
            m = VllmsnapCli.checkpointer().snapshot(SnapshotRequest.of(src.pid(), image, port, sleepLevel, false),
                    VllmsnapCli.progress(System.out));
        } catch (EngineException e) {
            src.stop();
            throw e;
        }
        src.stop();

        System.out.println("3/3 restore" + (lazyPages ? " (lazy pages)" : ""));
        RestoreRequest req = RestoreRequest.of(image);
        if (lazyPages) {
            req = new RestoreRequest(image, req.rootfs(), 0, true, true, req.timeouts(), null, req.host());
        }
        RestoreResult r = VllmsnapCli.restorer().restore(req, VllmsnapCli.progress(System.out));
        try {
            String stateAfter = client.getJson("/state").path("weights_sha256").asText();
            if (!stateAfter.equals(stateBefore)) {
                throw new EngineException("restored server holds other weights than the source");
            }
        } finally {
            Processes.kill(r.pid());
            Processes.awaitGone(r.pid(), Duration.ofSeconds(30));
        }
        printTable(cold, m, r);
        if (json != null) {
            writeJson(cold, m, r);
        }
        if (keep) {
            System.out.println("image kept: " + image + " (vllmsnap inspect " + image + ")");
        } else {
            removeDemoImage(image);
        }
        return 0;
    }

    /** Only the image this run created: a demo must not fill the disk with 2 GiB images. */
    private static void removeDemoImage(Path image) throws java.io.IOException {
        try (var files = Files.walk(image)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private void printTable(double cold, Manifest m, RestoreResult r) {
        System.out.println();
        System.out.printf("%-34s %10s%n", "", "seconds");
        System.out.printf("%-34s %10.3f%n", "cold start → first token", cold);
        System.out.printf("%-34s %10.3f%n", "restore → first token", r.totalSeconds());
        r.phaseSeconds().forEach((p, s) -> System.out.printf("    %-30s %10.3f%n", p, s));
        System.out.printf("%-34s %10.3f%n", "snapshot (source busy)", m.totalSeconds());
        m.phaseSeconds().forEach((p, s) -> System.out.printf("    %-30s %10.3f%n", p, s));
        System.out.printf("%-34s %10.1f MiB%n", "image size", m.sizeBytes() / 1048576.0);
        System.out.printf("%-34s %10.1fx%n", "restore speed-up over cold start", cold / r.totalSeconds());
    }

    private void writeJson(double cold, Manifest m, RestoreResult r) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("date", Instant.now().toString());
        out.put("machine", Map.of("hostname", m.source().hostname(), "cpus", Runtime.getRuntime().availableProcessors(),
                "kernel", System.getProperty("os.version"), "java", System.getProperty("java.version"),
                "memoryBytes", ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory
                        .getOperatingSystemMXBean()).getTotalMemorySize()));
        out.put("criuVersion", new Criu("criu").version());
        out.put("standIn", Map.of("weightsBytes", weightsMib << 20, "kvBytes", kvMib << 20,
                "compileRounds", compileRounds));
        out.put("sleepLevel", sleepLevel);
        out.put("lazyPages", lazyPages);
        out.put("coldStartToFirstTokenSeconds", cold);
        out.put("restoreToFirstTokenSeconds", r.totalSeconds());
        out.put("speedup", cold / r.totalSeconds());
        out.put("restorePhasesSeconds", r.phaseSeconds());
        out.put("snapshotSeconds", m.totalSeconds());
        out.put("snapshotPhasesSeconds", m.phaseSeconds());
        out.put("imageBytes", m.sizeBytes());
        Files.createDirectories(json.toAbsolutePath().getParent());
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), out);
        System.out.println("results written to " + json);
    }
}
