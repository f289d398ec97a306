package io.vllmsnap.chart;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The chart's value scenarios: the defaults, every helm/vllmsnap/ci/*-values.yaml (together they set every
 * documented option) and deploy/values.yaml. Rendered once per test run: Helm is not cheap.
 */
final class Scenarios {

    private static final Map<String, RenderedChart> CACHE = new ConcurrentHashMap<>();

    private Scenarios() {
    }

    static Stream<RenderedChart> all() {
        List<Path> files = new ArrayList<>();
        files.add(null);
        try (Stream<Path> ci = Files.list(ChartFiles.SCENARIOS)) {
            ci.filter(p -> p.getFileName().toString().endsWith("-values.yaml")).sorted().forEach(files::add);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        files.add(ChartFiles.DEPLOY_VALUES);
        return files.stream().map(Scenarios::rendered);
    }

    static RenderedChart defaults() {
        return rendered(null);
    }

    static RenderedChart named(String ciFile) {
        return rendered(ChartFiles.SCENARIOS.resolve(ciFile));
    }

    static RenderedChart rendered(Path values) {
        String key = values == null ? "" : values.toString();
        return CACHE.computeIfAbsent(key, k -> RenderedChart.render(values));
    }
}
