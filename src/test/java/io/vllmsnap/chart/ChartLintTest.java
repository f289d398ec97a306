package io.vllmsnap.chart;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Helm's own checks of the chart, and the schema refusing bad values with a message that says what is wrong. */
class ChartLintTest {

    @TempDir
    Path tmp;

    @Test
    void strictLintOfTheDefaultsPasses() {
        LintResult result = new Helm(ChartFiles.CHART).lint().strict().call();
        assertThat(result.isFailed()).as(String.join("\n", result.getMessages())).isFalse();
        assertThat(result.getMessages()).noneMatch(m -> m.contains("[ERROR]") || m.contains("[WARNING]"));
    }

    /**
     * helm-java's lint takes no values file, so each scenario is linted as a copy of the chart whose values.yaml is
     * the chart defaults overlaid with the scenario (what Helm would merge).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("io.vllmsnap.chart.ChartRenderTest#scenarios")
    void strictLintPassesWithEveryScenario(RenderedChart scenario) throws IOException {
        Path copy = tmp.resolve("vllmsnap");
        copyTree(ChartFiles.CHART, copy);
        Files.writeString(copy.resolve("values.yaml"), RenderedChart.YAML.writeValueAsString(scenario.values()));
        LintResult result = new Helm(copy).lint().strict().call();
        assertThat(result.isFailed()).as(scenario + ": " + String.join("\n", result.getMessages())).isFalse();
        assertThat(result.getMessages()).as(scenario.scenario()).noneMatch(m -> m.contains("[ERROR]") || m.contains("[WARNING]"));
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path p : files.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }

    @Test
    void zeroOperatorReplicasAreRefused() throws IOException {
        assertRefused("operator:\n  replicas: 0\n", "replicas");
    }

    @Test
    void unknownAgentManagerIsRefused() throws IOException {
        assertRefused("agent:\n  managedBy: kubelet\n", "managedBy");
    }

    @Test
    void misspeltKeyIsRefused() throws IOException {
        assertRefused("operator:\n  replica: 2\n", "replica");
    }

    @Test
    void existingSecretModeWithoutASecretNameIsRefused() throws IOException {
        assertRefused("tls:\n  mode: existingSecret\n", "existingSecret");
    }

    @Test
    void unknownNvidiaModeIsRefused() throws IOException {
        assertRefused("agent:\n  nvidia:\n    mode: cdi-magic\n", "mode");
    }

    private void assertRefused(String values, String mentioned) throws IOException {
        Path file = Files.writeString(tmp.resolve("bad-values.yaml"), values);
        assertThatThrownBy(() -> RenderedChart.render(file))
                .hasMessageContaining("values don't meet the specifications of the schema")
                .hasMessageContaining(mentioned);
    }
}
