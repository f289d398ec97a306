package io.vllmsnap.chart;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.utils.Serialization;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CRDs in the chart and in deploy/ are the ones the operator build generates (crds/), byte for byte.
 * Fix a difference with `make sync-crds`.
 */
class CrdSyncTest {

    @Test
    void chartCrdsEqualTheGeneratedCrds() {
        assertThat(manifests(ChartFiles.CHART_CRDS)).as("helm/vllmsnap/crds vs crds/ (run make sync-crds)")
                .isEqualTo(manifests(ChartFiles.CRDS));
    }

    @Test
    void deployCrdsEqualTheGeneratedCrds() {
        assertThat(manifests(ChartFiles.DEPLOY_CRDS)).as("deploy/crds vs crds/ (run make sync-crds)")
                .isEqualTo(manifests(ChartFiles.CRDS));
    }

    @Test
    void everyCrdInTheChartIsAVllmsnapCrdAndVllmRestoreScales() {
        for (Map.Entry<String, String> file : manifests(ChartFiles.CHART_CRDS).entrySet()) {
            CustomResourceDefinition crd = Serialization.unmarshal(file.getValue(), CustomResourceDefinition.class);
            assertThat(crd.getSpec().getGroup()).as(file.getKey()).isEqualTo("vllmsnap.io");
            if (crd.getSpec().getNames().getKind().equals("VllmRestore")) {
                // HPA and KEDA (deploy/examples) scale VllmRestore through this subresource.
                assertThat(crd.getSpec().getVersions()).anySatisfy(v -> assertThat(v.getSubresources().getScale()).isNotNull());
            }
        }
    }

    /** File name to content of the manifests directly in a directory; empty when the directory does not exist. */
    static Map<String, String> manifests(Path dir) {
        Map<String, String> files = new TreeMap<>();
        if (!Files.isDirectory(dir)) {
            return files;
        }
        try (Stream<Path> list = Files.list(dir)) {
            for (Path p : list.filter(Files::isRegularFile).toList()) {
                String name = p.getFileName().toString();
                if (name.endsWith(".yaml") || name.endsWith(".yml") || name.endsWith(".json")) {
                    files.put(name, Files.readString(p));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return files;
    }
}
