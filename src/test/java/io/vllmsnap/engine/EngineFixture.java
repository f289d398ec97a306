package io.vllmsnap.engine;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vllmsnap.criu.Criu;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Real CRIU, real stand-in servers in their own namespaces; everything started here is stopped in close(). */
final class EngineFixture implements AutoCloseable {
    static final long MIB = 1 << 20;
    static final Path WORK = Path.of("target/engine-it").toAbsolutePath();

    final JobLimiter limiter;
    final Checkpointer checkpointer;
    final Restorer restorer;
    private final List<SourceLauncher.Source> sources = new ArrayList<>();
    private final List<Long> restored = new ArrayList<>();
    private final List<Path> images = new ArrayList<>();

    EngineFixture(int maxJobs) {
        limiter = new JobLimiter(maxJobs);
        Criu criu = Criu.fromEnvironment();
        checkpointer = new Checkpointer(criu, new NoGpuCheckpointer(), limiter);
        restorer = new Restorer(criu, new NoGpuCheckpointer(), limiter);
    }

    EngineFixture() {
        this(2);
    }

    SourceLauncher.Source start(int port, long weightsBytes, long kvBytes) throws Exception {
        StandInServer.Config c = new StandInServer.Config(port, WORK.resolve("weights-" + weightsBytes / MIB + "m"),
                weightsBytes, kvBytes, 2);
        StandInServer.prepareWeights(c);
        SourceLauncher.Source s = StandInServer.start(c, Duration.ofMinutes(2));
        sources.add(s);
        return s;
    }

    RestoreResult restore(Path image) throws EngineException {
        RestoreResult r = restorer.restore(RestoreRequest.of(image), Progress.NONE);
        restored.add(r.pid());
        return r;
    }

    /** A fresh image path; the image (and a failed dump's log) is deleted when the fixture closes. */
    Path newImagePath(String name) throws Exception {
        Path dir = WORK.resolve("images");
        Files.createDirectories(dir);
        Path p = dir.resolve(name + "-" + System.nanoTime());
        images.add(p);
        return p;
    }

    static JsonNode state(int port) throws EngineException {
        return new VllmClient(port).getJson("/state");
    }

    /**
     * POST /touch of the stand-in: reads its weights and KV pool at once ({@code mode=bytes&threads=N}: every byte,
     * N threads) and answers a checksum of what it read.
     */
    static JsonNode touch(int port, String query) throws Exception {
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/touch?"
                    + query)).timeout(Duration.ofMinutes(2)).POST(HttpRequest.BodyPublishers.noBody()).build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new IllegalStateException("/touch?" + query + " answered " + r.statusCode() + ": " + r.body());
            }
            return new ObjectMapper().readTree(r.body());
        }
    }

    static void stopRestored(long pid) {
        Processes.kill(pid);
        Processes.awaitGone(pid, Duration.ofSeconds(30));
    }

    @Override
    public void close() {
        restored.forEach(EngineFixture::stopRestored);
        sources.forEach(SourceLauncher.Source::stop);
        for (Path image : images) {
            Checkpointer.deleteTree(image);
            Checkpointer.deleteTree(image.resolveSibling(image.getFileName() + ".failed-dump.log"));
        }
    }
}
