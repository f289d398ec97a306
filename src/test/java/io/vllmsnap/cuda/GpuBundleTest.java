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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** What travels to the GPU machine builds from this checkout, stays under its size limit, and runs. */
class GpuBundleTest {
    private static final long LIMIT_BYTES = 60L << 20;

    @TempDir
    static Path out;
    private static Path bundle;
    private static Run build;

    /** Built once for the tests below, as bench/gpu/build-bundle.sh builds it for the GPU machine. */
    @BeforeAll
    static void buildBundle() throws Exception {
        Path jdk = Path.of(System.getProperty("java.home"));
        assertThat(jdk.resolve("bin/jlink")).as("tests run on a JDK with jlink").exists();
        bundle = out.resolve("bundle");
        String deps = String.join(":", jarOf(CommandLine.class), jarOf(ObjectMapper.class), jarOf(JsonFactory.class),
                jarOf(JsonProperty.class));
        build = run(List.of("bash", "bench/gpu/build-bundle.sh", bundle.toString()), 240,
                "JAVA_HOME", jdk.toString(), "CLASSES_DIR", jarOf(CudaCheckpointProbe.class), "DEPS", deps);
    }

    @Test
    void bundleBuildsUnderSixtyMibAndItsRuntimeRunsTheProbe() throws Exception {
        assertThat(build.exit).as(build.output).isZero();
        assertThat(sizeOf(bundle)).as("bundle size").isLessThan(LIMIT_BYTES);
        assertThat(bundle.resolve("jre/bin/java")).isExecutable();
        assertThat(bundle.resolve("src/main/python/vllmsnap_standin/gpu_server.py")).exists();
        assertThat(bundle.resolve("src/main/python/vllmsnap_standin/server.py")).exists();
        assertThat(bundle.resolve("bin/vllmsnap")).isExecutable();
        assertThat(bundle.resolve("ffm-proof.sh")).exists();
        assertThat(bundle.resolve("run-benchmark.sh")).exists();
        assertThat(bundle.resolve("gpu_benchmark.py")).exists();
        assertThat(bundle.resolve("plan_runner.py")).exists();
        assertThat(bundle.resolve("probes.py")).exists();
        assertThat(bundle.resolve("plans/issue19-1p5b.json")).exists();
        assertThat(bundle.resolve("plans/issue19-8b.json")).exists();

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

        // The cuda-checkpoint stand-in: CRIU's plugin reads its stdout and stderr as one, so the JVM must add nothing,
        // even where the environment asks it to announce options.
        assertThat(bundle.resolve("bin/cuda-checkpoint")).isExecutable();
        Run help = run(List.of(bundle.resolve("bin/cuda-checkpoint").toString(), "-h"), 60,
                "JAVA_TOOL_OPTIONS", "-Dvllmsnap.test=1", "JDK_JAVA_OPTIONS", "-Dvllmsnap.test=2");
        assertThat(help.exit).as(help.output).isZero();
        assertThat(help.output).startsWith("Usage: cuda-checkpoint").contains("--action");
    }

    /**
     * CRIU's own CUDA plugin, as the bundle carries it, runs the bundled cuda-checkpoint from PATH and understands its
     * answers: it enables itself ({@code -h} names {@code --action}) and takes a process without CUDA for one with
     * nothing to pause or checkpoint. (The plugin disables itself where /proc/driver/nvidia/gpus is missing; CRIU's
     * fault injection 138 forces it on.) Without the stand-in on PATH the same dump logs that it is missing.
     */
    @Test
    void criusCudaPluginRunsTheBundledCudaCheckpoint() throws Exception {
        assertThat(build.exit).as(build.output).isZero();
        Path criu = bundle.resolve("criu/criu.sh");
        assertThat(criu).as("make test installs CRIU first (hack/install-criu.sh)").isExecutable();
        Path plugins = bundle.resolve("criu/plugins");
        assertThat(plugins.resolve("cuda_plugin.so")).exists();
        String systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

        Path calls = out.resolve("calls.jsonl");
        PluginDump with = dumpWithPlugin(criu, plugins, bundle.resolve("bin") + ":" + systemPath, calls, "with");
        assertThat(with.run.exit).as(with.log).isZero();
        assertThat(with.log).contains("cuda_plugin: initialized")
                .contains("no need to pause devices on pid " + with.pid)
                .contains("No need to checkpoint devices on pid " + with.pid);
        List<JsonNode> lines = Files.readAllLines(calls).stream().map(GpuBundleTest::json).toList();
        assertThat(lines).extracting(l -> l.get("args").toString() + " -> " + l.get("exit").asInt()).containsExactly(
                "[\"-h\"] -> 0",
                "[\"--get-restore-tid\",\"--pid\",\"" + with.pid + "\"] -> 1",
                "[\"--get-restore-tid\",\"--pid\",\"" + with.pid + "\"] -> 1");

        PluginDump without = dumpWithPlugin(criu, plugins, systemPath, calls, "without");
        assertThat(without.run.exit).as(without.log).isZero();
        assertThat(without.log).contains("check that cuda-checkpoint is present in $PATH")
                .doesNotContain("cuda_plugin: initialized");
    }

    private record PluginDump(long pid, Run run, String log) {
    }

    /** criu dump, with CRIU's CUDA plugin loaded, of a sleeping session leader (which the dump ends). */
    private static PluginDump dumpWithPlugin(Path criu, Path plugins, String path, Path callLog, String name)
            throws Exception {
        Path images = Files.createDirectories(out.resolve("images-" + name));
        Process sleeper = new ProcessBuilder("setsid", "sleep", "600").redirectInput(ProcessBuilder.Redirect.from(
                Path.of("/dev/null").toFile())).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            Run r = run(List.of(criu.toString(), "dump", "--tree", Long.toString(sleeper.pid()), "--images-dir",
                    images.toString(), "--log-file", "dump.log", "-v4", "--libdir", plugins.toString()), 120,
                    "CRIU_FAULT", "138", "PATH", path, CudaCheckpointCli.CALL_LOG_VARIABLE, callLog.toString());
            Path log = images.resolve("dump.log");
            return new PluginDump(sleeper.pid(), r, Files.exists(log) ? Files.readString(log) : r.output);
        } finally {
            sleeper.destroyForcibly();
            sleeper.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static JsonNode json(String line) {
        try {
            return new ObjectMapper().readTree(line);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * Issue 19's harness end to end, as the GPU machine runs it but on the CPU stand-in (bench/gpu/plans/dryrun-cpu.json
     * through a copy of the bundle's run-benchmark.sh, real CRIU): every scenario of the plan runs without an error, each
     * restore records what its command read and how much of its image was in the page cache, CRIU's logs are read,
     * N restores at once each answer, and the report (bench/gpu/flavours_report.py) judges the run. A device call
     * then does not fail on the harness.
     */
    @Test
    void issue19PlanRunsOnTheCpuStandInAndItsReportJudgesIt() throws Exception {
        assertThat(build.exit).as(build.output).isZero();
        Path dry = Files.createDirectories(out.resolve("dry"));
        Path copy = dry.resolve("bundle"); // the launcher unpacks its AOT cache where it runs: not in the measured one
        assertThat(run(List.of("cp", "-r", bundle.toString(), copy.toString()), 60).exit).isZero();
        Run r = run(List.of("bash", copy.resolve("run-benchmark.sh").toString(), dry.resolve("out").toString(),
                "--plan", copy.resolve("plans/dryrun-cpu.json").toString(), "--no-drop", "--tag", "dry",
                "--budget-s", "400", "--work", dry.resolve("work").toString(), "--port",
                Integer.toString(freePortBase(40 + 4))), 480, "BENCH_TIMEOUT", "450");
        assertThat(r.exit).as(r.output).isZero();
        JsonNode raw = new ObjectMapper().readTree(dry.resolve("out/raw-dry.json").toFile());
        assertThat(raw.path("errors")).as(raw.path("errors").toString()).isEmpty();
        assertThat(raw.path("machine").path("cpu_model").asText()).isNotBlank();
        java.util.Map<String, JsonNode> byId = new java.util.HashMap<>();
        raw.path("scenarios").forEach(s -> byId.put(s.path("id").asText(), s));
        assertThat(byId).containsKeys("cpu/vllm/cold-start", "cpu/vllm/snapshot-l2", "cpu/vllm/snapshot-l1",
                "cpu/vllm/restore-l2-warm", "cpu/vllm/restore-l1-warm", "cpu/vllm/restore-l2-warm-stage",
                "cpu/vllm/restore-l1-copy-thp", "cpu/vllm/restore-l1-warm-lazy", "cpu/vllm/parallel-l2-x1",
                "cpu/vllm/parallel-l2-x2", "cpu/vllm/parallel-l2-x4", "cpu/register/restore-l2-warm");
        for (JsonNode s : byId.values()) {
            if (!s.path("kind").asText().equals("restore")) {
                continue;
            }
            assertThat(s.path("reps").size()).as(s.path("id").asText()).isGreaterThan(0);
            for (JsonNode rep : s.path("reps")) {
                String what = s.path("id").asText() + " " + rep;
                assertThat(rep.path("total_s").isNumber()).as(what).isTrue();
                assertThat(rep.path("io").path("rchar").asLong()).as(what).isGreaterThan(0);
                assertThat(rep.path("resident_before").path("image").path("total_bytes").asLong()).as(what)
                        .isGreaterThan(0);
                assertThat(rep.path("criu_log").path("nr_restored_pages").asLong()).as(what).isGreaterThan(0);
            }
        }
        assertThat(byId.get("cpu/vllm/restore-l2-warm").path("reps").get(0).path("criu_log")
                .path("map_fill_mapped_mib").asInt()).as("map fill on by default").isGreaterThan(0);
        for (JsonNode round : byId.get("cpu/vllm/parallel-l2-x4").path("reps")) {
            assertThat(round.path("restores").size()).isEqualTo(4);
            round.path("restores").forEach(x -> assertThat(x.path("total_s").isNumber()).as(x.toString()).isTrue());
            assertThat(round.path("total_s").asDouble()).isEqualTo(java.util.stream.StreamSupport
                    .stream(round.path("restores").spliterator(), false).mapToDouble(x -> x.path("total_s").asDouble())
                    .max().orElseThrow());
        }
        // The CPU stand-in's 64 MiB of weights are plain private anonymous memory: map fill may map them.
        JsonNode areas = byId.get("cpu/vllm/snapshot-l1").path("reps").get(0).path("large_areas_after_gpu_checkpoint");
        assertThat(areas.size()).as(areas.toString()).isGreaterThan(0);
        assertThat(areas.get(0).path("map_fill_eligible").asBoolean()).as(areas.toString()).isTrue();
        assertThat(byId.get("cpu/vllm/snapshot-l1").path("asleep").path("smaps").path("largest").size()).isGreaterThan(0);

        Run report = run(List.of("python3", "bench/gpu/flavours_report.py", "--out-dir", dry.toString(), "--date",
                "2026-01-01", "--markdown", dry.resolve("table.md").toString(), dry.resolve("out/raw-dry.json").toString()),
                60);
        assertThat(report.exit).as(report.output).isZero();
        JsonNode result = new ObjectMapper().readTree(dry.resolve("gpu-none-flavours-2026-01-01.json").toFile());
        JsonNode staging = java.util.stream.StreamSupport.stream(result.path("runs").get(0).path("targets").spliterator(),
                false).filter(t -> t.path("target").asText().contains("staging")).findFirst().orElseThrow();
        assertThat(staging.path("met").isBoolean()).as(staging.toString()).isTrue();
        assertThat(staging.path("staged_read_bytes").isNumber()).as(staging.toString()).isTrue();
        JsonNode completions = result.path("runs").get(0).path("completions");
        assertThat(completions.path("restores_compared").asInt())
                .as("the CPU stand-in's answers depend on its counter: not compared").isZero();
        assertThat(completions.path("not_compared").size()).as(completions.toString()).isGreaterThanOrEqualTo(12);
        assertThat(completions.path("all_identical").asBoolean()).as("nothing compared is nothing proven").isFalse();
    }

    /** A port p such that p and p + 1 .. p + span are free now (the benchmark's sources use such a block). */
    private static int freePortBase(int span) throws IOException {
        for (int attempt = 0; attempt < 50; attempt++) {
            int base = 20000 + java.util.concurrent.ThreadLocalRandom.current().nextInt(10000);
            boolean free = true;
            for (int p = base; p <= base + span && free; p++) {
                try (java.net.ServerSocket s = new java.net.ServerSocket(p, 1, java.net.InetAddress.getLoopbackAddress())) {
                    s.setReuseAddress(true);
                } catch (IOException e) {
                    free = false;
                }
            }
            if (free) {
                return base;
            }
        }
        throw new IOException("no free block of " + span + " ports");
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
                int n = assertSummaryMatchesRepetitions(s);
                if (s.path("kind").asText().equals("restore")) {
                    timedRestores += n;
                }
            }
            assertThat(timedRestores).as(p + " timed restores").isGreaterThan(0);
            assertThat(r.path("targets").size()).as(p + " targets").isEqualTo(4);
            for (JsonNode t : r.path("targets")) {
                assertThat(t.has("met")).as(t.path("target").asText()).isTrue();
            }
            assertChartBeside(p);
        }
    }

    /**
     * Issue 9's result (bench/gpu/fastpath_report.py): each lever's row agrees with its repetitions and gave the
     * source's completions, and each shape's target names the fastest row with at least 3 repetitions.
     */
    @Test
    void fastPathResultIsConsistentWithItsRepetitions() throws IOException {
        List<Path> results;
        try (Stream<Path> files = Files.list(Path.of("bench/results"))) {
            results = files.filter(p -> p.getFileName().toString().matches("gpu-h100-fastpath-.*\\.json")).toList();
        }
        assertThat(results).isNotEmpty();
        for (Path p : results) {
            JsonNode r = new ObjectMapper().readTree(p.toFile());
            java.util.Map<String, Double> fastest = new java.util.HashMap<>();
            for (JsonNode row : r.path("rows")) {
                if (assertSummaryMatchesRepetitions(row) >= 3) {
                    fastest.merge(row.path("shape").asText(), row.path("median_s").asDouble(), Math::min);
                }
            }
            assertThat(r.path("targets").size()).as(p + " targets").isEqualTo(2);
            for (JsonNode t : r.path("targets")) {
                String shape = t.path("shape").asText();
                assertThat(t.path("met").isBoolean()).as(shape + " target measured").isTrue();
                assertThat(t.path("median_s").asDouble()).as(shape + " best").isEqualTo(fastest.get(shape));
                assertThat(t.path("met").asBoolean()).as(shape + " met")
                        .isEqualTo(t.path("median_s").asDouble() <= t.path("limit_s").asDouble());
            }
            assertChartBeside(p);
        }
    }

    /**
     * Issue 9's map-fill result (bench/gpu/mapfill_report.py): every row of every run agrees with its repetitions and
     * gave the source's completions; each run's targets judge the row that was the operator's default path there, and
     * the runs said to meet both targets are exactly those whose two targets are met.
     */
    @Test
    void mapFillResultJudgesEachRunOnItsDefaultPath() throws IOException {
        List<Path> results;
        try (Stream<Path> files = Files.list(Path.of("bench/results"))) {
            results = files.filter(p -> p.getFileName().toString().matches("gpu-h100-mapfill-.*\\.json")).toList();
        }
        assertThat(results).isNotEmpty();
        for (Path p : results) {
            JsonNode r = new ObjectMapper().readTree(p.toFile());
            List<String> meetingBoth = new java.util.ArrayList<>();
            for (JsonNode run : r.path("runs")) {
                java.util.Map<String, JsonNode> defaults = new java.util.HashMap<>();
                for (JsonNode row : run.path("rows")) {
                    JsonNode how = row.path("restored_with");
                    if (assertSummaryMatchesRepetitions(row) >= 3 && how.path("default_path").asBoolean()) {
                        assertThat(how.path("memory").asText()).isEqualTo("mapped from the image");
                        defaults.put(row.path("shape").asText(), row);
                    }
                }
                int met = 0;
                for (JsonNode t : run.path("targets")) {
                    JsonNode row = defaults.get(t.path("shape").asText());
                    assertThat(row).as(run.path("tag").asText() + " " + t.path("shape").asText()).isNotNull();
                    assertThat(t.path("median_s").asDouble()).isEqualTo(row.path("median_s").asDouble());
                    assertThat(t.path("met").asBoolean())
                            .isEqualTo(t.path("median_s").asDouble() <= t.path("limit_s").asDouble());
                    met += t.path("met").asBoolean() ? 1 : 0;
                }
                if (run.path("targets").size() == 2 && met == 2) {
                    meetingBoth.add(run.path("tag").asText());
                }
            }
            assertThat(r.path("runs_meeting_both_targets")).extracting(JsonNode::asText)
                    .containsExactlyElementsOf(meetingBoth);
            assertChartBeside(p);
        }
    }

    /** n, min and median of a summarized scenario agree with its repetitions; every restore gave its source's text. */
    private static int assertSummaryMatchesRepetitions(JsonNode s) {
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
            return 0;
        }
        java.util.Collections.sort(totals);
        int n = totals.size();
        double median = n % 2 == 1 ? totals.get(n / 2) : (totals.get(n / 2 - 1) + totals.get(n / 2)) / 2;
        assertThat(s.path("min_s").asDouble()).as(id + " min").isEqualTo(totals.get(0));
        assertThat(s.path("median_s").asDouble()).as(id + " median").isCloseTo(median, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(s.path("phases_median_s").size()).as(id + " phases").isGreaterThan(0);
        return n;
    }

    private static void assertChartBeside(Path json) throws IOException {
        Path png = Path.of(json.toString().replaceAll("\\.json$", ".png"));
        byte[] head = Files.readAllBytes(png);
        assertThat(new String(head, 1, 3, StandardCharsets.US_ASCII)).as(png + " is a PNG").isEqualTo("PNG");
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
