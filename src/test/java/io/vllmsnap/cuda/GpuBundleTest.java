package io.vllmsnap.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** What travels to the GPU machine builds from this checkout, stays under its size limit, and runs. */
class GpuBundleTest {
    private static final long LIMIT_BYTES = 60L << 20;

    @TempDir
    Path out;

    @Test
    void bundleBuildsUnderSixtyMibAndItsRuntimeRunsTheProbe() throws Exception {
        Path jdk = Path.of(System.getProperty("java.home"));
        assertThat(jdk.resolve("bin/jlink")).as("tests run on a JDK with jlink").exists();
        Path bundle = out.resolve("bundle");
        String deps = String.join(":", jarOf(CommandLine.class), jarOf(ObjectMapper.class), jarOf(JsonFactory.class),
                jarOf(JsonProperty.class));

        Run build = run(List.of("bash", "bench/gpu/build-bundle.sh", bundle.toString()), 240,
                "JAVA_HOME", jdk.toString(), "CLASSES_DIR", jarOf(CudaCheckpointProbe.class), "DEPS", deps);

        assertThat(build.exit).as(build.output).isZero();
        assertThat(sizeOf(bundle)).as("bundle size").isLessThan(LIMIT_BYTES);
        assertThat(bundle.resolve("jre/bin/java")).isExecutable();
        assertThat(bundle.resolve("src/main/python/vllmsnap_standin/gpu_server.py")).exists();
        assertThat(bundle.resolve("src/main/python/vllmsnap_standin/server.py")).exists();
        assertThat(bundle.resolve("bin/vllmsnap")).isExecutable();
        assertThat(bundle.resolve("ffm-proof.sh")).exists();
        assertThat(bundle.resolve("run-benchmark.sh")).exists();
        assertThat(bundle.resolve("gpu_benchmark.py")).exists();

        // The CLI's AOT cache (trained at build, as root with CRIU, as tests run) still serves a copy of the bundle
        // elsewhere, as on the GPU machine: with AOTMode=on the JVM refuses to start when it cannot use the cache.
        assertThat(bundle.resolve("lib/vllmsnap.aot.gz")).as(build.output).exists();
        Path copy = out.resolve("copied-elsewhere");
        assertThat(run(List.of("cp", "-r", bundle.toString(), copy.toString()), 60).exit).isZero();
        Run aot = run(List.of(copy.resolve("bin/vllmsnap").toString(), "--version"), 60,
                "JAVA_OPTS", "-XX:AOTMode=on -Xlog:aot");
        assertThat(aot.exit).as(aot.output).isZero();
        assertThat(aot.output).contains("Opened AOT cache " + copy.resolve("lib/vllmsnap.aot"))
                .contains("Using AOT-linked classes: true");

        // On a machine without the driver the bundled probe says so and exits 2, as it would on a GPU-less node.
        Run probe = run(List.of(bundle.resolve("bin/cuda-probe").toString(), "info"), 60,
                "JAVA_OPTS", "-Dvllmsnap.libcuda=libcuda-absent-for-test.so.1", "PATH", "/usr/bin:/bin");
        assertThat(probe.exit).as(probe.output).isEqualTo(2);
        JsonNode info = new ObjectMapper().readTree(probe.output.lines().filter(l -> l.startsWith("{")).findFirst().orElseThrow());
        assertThat(info.get("error").asText()).contains("libcuda-absent-for-test.so.1 not found")
                .contains("no cuda-checkpoint on PATH");
    }

    @Test
    void recordedGpuResultsParse() throws IOException {
        List<Path> results;
        try (Stream<Path> files = Files.list(Path.of("bench/results"))) {
            results = files.filter(p -> p.getFileName().toString().matches("gpu-.*\\.json")).toList();
        }
        assertThat(results).isNotEmpty();
        for (Path p : results) {
            JsonNode r = new ObjectMapper().readTree(p.toFile());
            assertThat(r.path("date").asText()).as(p + " date").matches("\\d{4}-\\d{2}-\\d{2}");
            assertThat(r.path("machine").path("gpu").asText()).as(p + " machine.gpu").isNotBlank();
        }
    }

    /**
     * The benchmark's result (bench/gpu/aggregate.py): every scenario's min/median agree with its repetitions,
     * every restore answered with the source's own greedy completion (no speed from skipped work), each target
     * says whether it was met, and the chart next to it is a PNG.
     */
    @Test
    void benchmarkResultIsConsistentWithItsRepetitions() throws IOException {
        List<Path> results;
        try (Stream<Path> files = Files.list(Path.of("bench/results"))) {
            results = files.filter(p -> p.getFileName().toString().matches("gpu-h100-\\d{4}-\\d{2}-\\d{2}\\.json")).toList();
        }
        assertThat(results).isNotEmpty();
        for (Path p : results) {
            JsonNode r = new ObjectMapper().readTree(p.toFile());
            assertThat(r.path("machine").path("driver").asText()).as(p + " driver").isNotBlank();
            assertThat(r.path("scenarios").size()).as(p + " scenarios").isGreaterThan(0);
            int timedRestores = 0;
            for (JsonNode s : r.path("scenarios")) {
                String id = s.path("id").asText();
                List<Double> totals = new java.util.ArrayList<>();
                for (JsonNode rep : s.path("reps")) {
                    if (rep.path("total_s").isNumber()) {
                        totals.add(rep.path("total_s").asDouble());
                    }
                    if (rep.has("same_completion") && !rep.path("same_completion").isNull()) {
                        assertThat(rep.path("same_completion").asBoolean()).as(id + " completion after restore").isTrue();
                    }
                }
                assertThat(s.path("n").asInt()).as(id + " n").isEqualTo(totals.size());
                if (totals.isEmpty()) {
                    continue;
                }
                java.util.Collections.sort(totals);
                int n = totals.size();
                double median = n % 2 == 1 ? totals.get(n / 2) : (totals.get(n / 2 - 1) + totals.get(n / 2)) / 2;
                assertThat(s.path("min_s").asDouble()).as(id + " min").isEqualTo(totals.get(0));
                assertThat(s.path("median_s").asDouble()).as(id + " median").isCloseTo(median, org.assertj.core.data.Offset.offset(1e-9));
                assertThat(s.path("phases_median_s").size()).as(id + " phases").isGreaterThan(0);
                if (s.path("kind").asText().equals("restore")) {
                    timedRestores += n;
                }
            }
            assertThat(timedRestores).as(p + " timed restores").isGreaterThan(0);
            assertThat(r.path("targets").size()).as(p + " targets").isEqualTo(4);
            for (JsonNode t : r.path("targets")) {
                assertThat(t.has("met")).as(t.path("target").asText()).isTrue();
            }
            Path png = Path.of(p.toString().replaceAll("\\.json$", ".png"));
            byte[] head = Files.readAllBytes(png);
            assertThat(new String(head, 1, 3, StandardCharsets.US_ASCII)).as(png + " is a PNG").isEqualTo("PNG");
        }
    }

    private record Run(int exit, String output) {
    }

    private static Run run(List<String> cmd, int timeoutS, String... env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        for (int i = 0; i < env.length; i += 2) {
            pb.environment().put(env[i], env[i + 1]);
        }
        Path log = Files.createTempFile("gpu-bundle", ".log");
        pb.redirectOutput(log.toFile());
        Process p = pb.start();
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return new Run(-1, "timed out after " + timeoutS + " s: " + Files.readString(log));
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        Files.delete(log);
        return new Run(p.exitValue(), output);
    }

    private static String jarOf(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }

    private static long sizeOf(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
        }
    }
}
