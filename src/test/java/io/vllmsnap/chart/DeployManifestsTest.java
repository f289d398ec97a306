package io.vllmsnap.chart;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * deploy/vllmsnap.yaml is the chart rendered with deploy/values.yaml, for users without Helm.
 * `make deploy-manifests` runs this test with -Dvllmsnap.regenerate=true, which rewrites the file instead of comparing.
 */
class DeployManifestsTest {

    static final String HEADER = """
            # vllmsnap: plain manifests for clusters installed without Helm.
            # Generated from helm/vllmsnap with deploy/values.yaml (release vllmsnap, namespace vllmsnap) by
            # `make deploy-manifests`; do not edit by hand. Install: see docs/install.md.
            """;

    @Test
    void deployManifestsEqualTheRenderedChart() throws IOException {
        String rendered = HEADER + RenderedChart.render(ChartFiles.DEPLOY_VALUES).yaml();
        if (Boolean.getBoolean("vllmsnap.regenerate")) {
            Files.writeString(ChartFiles.DEPLOY_MANIFEST, rendered);
        }
        assertThat(ChartFiles.DEPLOY_MANIFEST).as("deploy/vllmsnap.yaml is stale: run make deploy-manifests").exists();
        assertThat(Files.readString(ChartFiles.DEPLOY_MANIFEST))
                .as("deploy/vllmsnap.yaml differs from the chart rendered with deploy/values.yaml: run make deploy-manifests")
                .isEqualTo(rendered);
    }

    @Test
    void deployManifestsNeedNoSecretMaterialFromTheRepository() throws IOException {
        String manifest = Files.readString(ChartFiles.DEPLOY_MANIFEST);
        assertThat(manifest).doesNotContain("PRIVATE KEY").doesNotContain("tls.key:");
        assertThat(manifest).contains("secretName: vllmsnap-agent-tls");
    }
}
