package io.vllmsnap.chart;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The Grafana dashboard and the alert rules read only metrics the application exports. The set of exported names
 * is one input ({@link MetricNames#expectedExports()}); a test holding a real /q/metrics scrape can call
 * {@link #assertDashboardReadsOnly(Set)} and {@link #assertAlertsReadOnly(Set)} with {@link MetricNames#fromScrape}.
 */
class DashboardAndAlertsTest {

    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void dashboardQueriesReadOnlyExportedMetrics() throws IOException {
        assertDashboardReadsOnly(MetricNames.expectedExports());
    }

    @Test
    void alertRulesReadOnlyExportedMetrics() {
        assertAlertsReadOnly(MetricNames.expectedExports());
    }

    @Test
    void theCheckCatchesAMisspeltMetric() {
        Set<String> read = MetricNames.referencedBy(
                "sum by (result) (rate(vllmsnap_restores_totl{result!=\"success\"}[5m])) / on(job) up{job=\"x\"} > bool 0.5e3");
        assertThat(read).containsExactlyInAnyOrder("vllmsnap_restores_totl", "up");
        assertThat(MetricNames.fromScrape("# HELP x\nvllmsnap_restores_total{result=\"success\"} 3.0\nup 1\n"))
                .containsExactlyInAnyOrder("vllmsnap_restores_total", "up");
    }

    @Test
    void dashboardIsValidGrafanaJsonWithThePanelsTheIssueAsksFor() throws IOException {
        JsonNode dashboard = JSON.readTree(Files.readString(ChartFiles.DASHBOARD));
        assertThat(dashboard.path("uid").asText()).isEqualTo("vllmsnap");
        assertThat(dashboard.path("title").asText()).isNotBlank();
        Set<Integer> ids = new HashSet<>();
        List<String> allQueries = new ArrayList<>();
        for (JsonNode panel : dashboard.path("panels")) {
            assertThat(ids.add(panel.path("id").asInt())).as("unique panel id").isTrue();
            assertThat(panel.path("gridPos").path("w").asInt()).isBetween(1, 24);
            assertThat(panel.path("datasource").path("uid").asText()).isEqualTo("${datasource}");
            assertThat(panel.path("targets").size()).as(panel.path("title").asText()).isPositive();
            panel.path("targets").forEach(t -> allQueries.add(panel.path("title").asText() + " :: " + t.path("expr").asText()));
        }
        assertThat(allQueries).anyMatch(q -> q.contains("histogram_quantile(0.5, sum by (le) (rate(vllmsnap_restore_duration_seconds_bucket"))
                .anyMatch(q -> q.contains("histogram_quantile(0.9, sum by (le) (rate(vllmsnap_restore_duration_seconds_bucket"))
                .anyMatch(q -> q.contains("histogram_quantile(0.99, sum by (le) (rate(vllmsnap_restore_duration_seconds_bucket"))
                .anyMatch(q -> q.contains("sum by (phase)") && q.contains("vllmsnap_restore_duration_seconds_sum"))
                .anyMatch(q -> q.contains("sum by (result, path) (rate(vllmsnap_restores_total"))
                .anyMatch(q -> q.contains("vllmsnap_snapshot_size_bytes"))
                .anyMatch(q -> q.contains("max by (node) (vllmsnap_agent_queue_depth)"))
                .anyMatch(q -> q.startsWith("Cold start vs restore") && q.contains("$cold_start_seconds"));
        JsonNode phasePanel = panelWith(dashboard, "sum by (phase)");
        assertThat(phasePanel.path("fieldConfig").path("defaults").path("custom").path("stacking").path("mode").asText())
                .isEqualTo("normal");
    }

    @Test
    void dashboardConfigMapCarriesTheFileUnchanged() throws IOException {
        var configMap = Scenarios.defaults().all(io.fabric8.kubernetes.api.model.ConfigMap.class).stream()
                .filter(c -> c.getData().containsKey("vllmsnap.json")).findFirst().orElseThrow();
        assertThat(JSON.readTree(configMap.getData().get("vllmsnap.json")))
                .isEqualTo(JSON.readTree(Files.readString(ChartFiles.DASHBOARD)));
    }

    static void assertDashboardReadsOnly(Set<String> exported) throws IOException {
        JsonNode dashboard = JSON.readTree(Files.readString(ChartFiles.DASHBOARD));
        for (JsonNode panel : dashboard.path("panels")) {
            String title = panel.path("title").asText();
            Set<String> readByPanel = new HashSet<>();
            for (JsonNode target : panel.path("targets")) {
                String expr = target.path("expr").asText();
                assertThat(expr).as(title).isNotBlank();
                Set<String> read = MetricNames.referencedBy(expr);
                assertThat(exported).as(title + ": " + expr + " reads a metric nobody exports").containsAll(read);
                readByPanel.addAll(read);
            }
            assertThat(readByPanel).as(title + " reads no vllmsnap metric").anyMatch(n -> n.startsWith("vllmsnap_"));
        }
    }

    @SuppressWarnings("unchecked")
    static void assertAlertsReadOnly(Set<String> exported) {
        Set<String> allowed = new HashSet<>(exported);
        allowed.addAll(MetricNames.PROMETHEUS_SERIES);
        RenderedChart chart = Scenarios.named("certmanager-values.yaml");
        GenericKubernetesResource rule = chart.generic("monitoring.coreos.com/v1", "PrometheusRule").getFirst();
        List<Map<String, Object>> groups = (List<Map<String, Object>>) ((Map<String, Object>) rule.getAdditionalProperties().get("spec")).get("groups");
        List<String> alerts = new ArrayList<>();
        for (Map<String, Object> group : groups) {
            for (Map<String, Object> r : (List<Map<String, Object>>) group.get("rules")) {
                String expr = (String) r.get("expr");
                Set<String> read = MetricNames.referencedBy(expr);
                assertThat(read).as(r.get("alert") + ": " + expr).isNotEmpty();
                assertThat(allowed).as(r.get("alert") + ": " + expr + " reads a metric nobody exports").containsAll(read);
                alerts.add((String) r.get("alert"));
            }
        }
        assertThat(alerts).contains("VllmsnapRestoreFailures", "VllmsnapRestoreLatencyHigh", "VllmsnapAgentDown",
                "VllmsnapSnapshotStorageNearlyFull");
    }

    private static JsonNode panelWith(JsonNode dashboard, String exprPart) {
        for (JsonNode panel : dashboard.path("panels")) {
            for (JsonNode t : panel.path("targets")) {
                if (t.path("expr").asText().contains(exprPart)) {
                    return panel;
                }
            }
        }
        throw new AssertionError("no panel queries " + exprPart);
    }
}
