package io.vllmsnap.chart;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the chart, its test scenarios, the plain manifests and the CRDs live in the repository. */
final class ChartFiles {

    static final Path ROOT = findRoot();
    static final Path CHART = ROOT.resolve("helm/vllmsnap");
    static final Path SCENARIOS = CHART.resolve("ci");
    static final Path CRDS = ROOT.resolve("crds");
    static final Path CHART_CRDS = CHART.resolve("crds");
    static final Path DEPLOY = ROOT.resolve("deploy");
    static final Path DEPLOY_CRDS = DEPLOY.resolve("crds");
    static final Path DEPLOY_MANIFEST = DEPLOY.resolve("vllmsnap.yaml");
    static final Path DEPLOY_VALUES = DEPLOY.resolve("values.yaml");
    static final Path DEPLOY_EXAMPLES = DEPLOY.resolve("examples");
    static final Path DASHBOARD = CHART.resolve("dashboards/vllmsnap.json");
    static final Path DOCKER = ROOT.resolve("src/main/docker");

    /** Release name and namespace the tests and deploy/ render with (the ones docs/install.md uses). */
    static final String RELEASE = "vllmsnap";
    static final String NAMESPACE = "vllmsnap";

    private ChartFiles() {
    }

    private static Path findRoot() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("pom.xml"))) {
            dir = dir.getParent();
        }
        if (dir == null) {
            throw new IllegalStateException("no pom.xml above " + Path.of("").toAbsolutePath());
        }
        return dir;
    }
}
