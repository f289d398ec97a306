package io.vllmsnap.chart;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.TemplateCommand;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.Serialization;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/** The chart rendered by real Helm (helm-java), split into its objects. */
record RenderedChart(String scenario, Map<String, Object> values, String yaml, List<Map<String, Object>> documents,
                     List<HasMetadata> objects) {

    private static final Pattern DOCUMENT_SEPARATOR = Pattern.compile("(?m)^---\\s*$");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /** Renders with the chart's defaults plus the given values file (null: defaults only). */
    static RenderedChart render(Path valuesFile) {
        TemplateCommand template = new Helm(ChartFiles.CHART).template()
                .withName(ChartFiles.RELEASE)
                .withNamespace(ChartFiles.NAMESPACE);
        if (valuesFile != null) {
            template = template.withValuesFile(valuesFile);
        }
        String scenario = valuesFile == null ? "defaults"
                : valuesFile.getParent().getFileName() + "-" + valuesFile.getFileName();
        Map<String, Object> values = readFile(ChartFiles.CHART.resolve("values.yaml"));
        if (valuesFile != null) {
            merge(values, readFile(valuesFile));
        }
        String yaml = template.call();
        keepForInspection(scenario, yaml);
        return parse(scenario, values, yaml);
    }

    static RenderedChart parse(String scenario, Map<String, Object> values, String yaml) {
        List<Map<String, Object>> documents = new ArrayList<>();
        List<HasMetadata> objects = new ArrayList<>();
        for (String document : DOCUMENT_SEPARATOR.split(yaml)) {
            if (document.lines().allMatch(line -> line.isBlank() || line.startsWith("#"))) {
                continue; // a template that rendered nothing but comments
            }
            Map<String, Object> map = readMap(document);
            if (map == null || map.isEmpty()) {
                continue; // a template that rendered nothing but comments
            }
            documents.add(map);
            objects.add(Serialization.unmarshal(document));
        }
        return new RenderedChart(scenario, values, yaml, documents, objects);
    }

    @Override
    public String toString() {
        return scenario;
    }

    /** A value the chart was rendered with (chart defaults overlaid with the scenario's file), or null. */
    Object values(String... path) {
        Object node = values;
        for (String key : path) {
            if (!(node instanceof Map<?, ?> map)) {
                return null;
            }
            node = map.get(key);
        }
        return node;
    }

    /** Leaves the rendering under target/chart-render/ so a failing test can be read against it. */
    private static void keepForInspection(String scenario, String yaml) {
        try {
            Path dir = ChartFiles.ROOT.resolve("target/chart-render");
            java.nio.file.Files.createDirectories(dir);
            java.nio.file.Files.writeString(dir.resolve(scenario.replace(".yaml", "") + ".yaml"), yaml);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Map<String, Object> readFile(Path file) {
        try {
            return readMap(java.nio.file.Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @SuppressWarnings("unchecked")
    private static void merge(Map<String, Object> base, Map<String, Object> overlay) {
        overlay.forEach((key, value) -> {
            if (value == null) {
                base.remove(key); // Helm's rule: null in a values file deletes the default key
            } else if (value instanceof Map<?, ?> m && base.get(key) instanceof Map<?, ?> b) {
                merge((Map<String, Object>) b, (Map<String, Object>) m);
            } else {
                base.put(key, value);
            }
        });
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> readMap(String yamlDocument) {
        try {
            return YAML.readValue(yamlDocument, Map.class);
        } catch (IOException e) {
            throw new UncheckedIOException("not YAML: " + yamlDocument, e);
        }
    }

    <T extends HasMetadata> List<T> all(Class<T> type) {
        return objects.stream().filter(type::isInstance).map(type::cast).toList();
    }

    <T extends HasMetadata> Optional<T> find(Class<T> type, String name) {
        return all(type).stream().filter(o -> o.getMetadata().getName().equals(name)).findFirst();
    }

    <T extends HasMetadata> T get(Class<T> type, String name) {
        return find(type, name).orElseThrow(
                () -> new AssertionError(scenario + ": no " + type.getSimpleName() + " named " + name));
    }

    List<GenericKubernetesResource> generic(String apiVersion, String kind) {
        return all(GenericKubernetesResource.class).stream()
                .filter(r -> r.getApiVersion().equals(apiVersion) && r.getKind().equals(kind)).toList();
    }

    Deployment operator() {
        List<Deployment> deployments = all(Deployment.class);
        if (deployments.size() != 1) {
            throw new AssertionError(scenario + ": expected one Deployment, the operator's, got " + deployments.size());
        }
        return deployments.getFirst();
    }

    /**
     * The agent DaemonSet, whoever creates it: the chart renders it directly (agent.managedBy=chart) or into the
     * ConfigMap the operator reads (agent.managedBy=operator).
     */
    DaemonSet agentDaemonSet() {
        Optional<DaemonSet> direct = all(DaemonSet.class).stream().findFirst();
        if (direct.isPresent()) {
            return direct.get();
        }
        ConfigMap desired = all(ConfigMap.class).stream()
                .filter(c -> c.getMetadata().getName().endsWith("-agent-daemonset")).findFirst()
                .orElseThrow(() -> new AssertionError(scenario + ": neither a DaemonSet nor its ConfigMap"));
        return Serialization.unmarshal(desired.getData().get("daemonset.yaml"), DaemonSet.class);
    }
}
