package io.vllmsnap.operator;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.vllmsnap.operator.AgentDaemonSetSettings.ManagedBy;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.jboss.logging.Logger;

/**
 * Keeps the agent DaemonSet in the state the chart rendered into a ConfigMap: creates it when missing, puts it back
 * when its spec drifts, never deletes it (it is owned by that ConfigMap, so uninstalling the chart removes it, not an
 * operator restart). With {@link ManagedBy#CHART} it only reads the DaemonSet. Problems are logged and recorded as
 * Events, never thrown: the operator keeps serving snapshots and restores with whatever agents run.
 */
public class AgentDaemonSetKeeper {
    private static final Logger LOG = Logger.getLogger(AgentDaemonSetKeeper.class);
    public static final String DESIRED_KEY = "daemonset.yaml";
    /** Hash of the desired labels, annotations and spec last written: a changed ConfigMap is seen at once. */
    public static final String HASH_ANNOTATION = "vllmsnap.io/desired-state-hash";
    private static final ObjectMapper JSON = new ObjectMapper();

    public enum State {
        CREATED, RESTORED, IN_SYNC, OBSERVED, ABSENT, DESIRED_STATE_MISSING, DESIRED_STATE_INVALID, API_ERROR;

        boolean problem() {
            return this == ABSENT || this == DESIRED_STATE_MISSING || this == DESIRED_STATE_INVALID || this == API_ERROR;
        }
    }

    public record Outcome(State state, String message) {
    }

    private final KubernetesClient client;
    private final EventRecorder events;
    private final ManagedBy managedBy;
    private final String namespace;
    private final String name;
    private final String configMapName;
    private Outcome last;
    /** uid and generation of the DaemonSet as we last wrote it: unchanged since means nobody touched its spec. */
    private String writtenUid;
    private Long writtenGeneration;
    private String writtenHash;

    public AgentDaemonSetKeeper(KubernetesClient client, EventRecorder events, ManagedBy managedBy, String namespace,
            String name, String configMapName) {
        this.client = client;
        this.events = events;
        this.managedBy = managedBy;
        this.namespace = namespace;
        this.name = name;
        this.configMapName = configMapName;
    }

    /** One pass: compare, write if needed, report. Safe to call from one thread at a time, as often as wanted. */
    public synchronized Outcome keep() {
        Outcome outcome;
        try {
            outcome = managedBy == ManagedBy.CHART ? observe() : reconcile();
        } catch (KubernetesClientException e) {
            outcome = new Outcome(State.API_ERROR, "cannot keep DaemonSet " + namespace + "/" + name + ": " + e.getMessage());
        } catch (RuntimeException e) {
            outcome = new Outcome(State.API_ERROR, "cannot keep DaemonSet " + namespace + "/" + name + ": " + e);
        }
        report(outcome);
        return outcome;
    }

    private Outcome observe() {
        DaemonSet live = daemonSets().withName(name).get();
        if (live == null) {
            return new Outcome(State.ABSENT, "agent DaemonSet " + namespace + "/" + name
                    + " not found; with agent.managedBy=chart the chart creates it, the operator only reads it");
        }
        var status = live.getStatus();
        return new Outcome(State.OBSERVED, "agent DaemonSet " + namespace + "/" + name + " kept by the chart: "
                + (status == null ? "no status yet" : status.getNumberReady() + "/" + status.getDesiredNumberScheduled() + " agents ready"));
    }

    private Outcome reconcile() {
        ConfigMap configMap = client.configMaps().inNamespace(namespace).withName(configMapName).get();
        if (configMap == null) {
            return new Outcome(State.DESIRED_STATE_MISSING, "ConfigMap " + namespace + "/" + configMapName
                    + " with the desired agent DaemonSet not found (the chart renders it with agent.managedBy=operator)");
        }
        String yaml = configMap.getData() == null ? null : configMap.getData().get(DESIRED_KEY);
        if (yaml == null || yaml.isBlank()) {
            return new Outcome(State.DESIRED_STATE_MISSING, "ConfigMap " + namespace + "/" + configMapName
                    + " has no key " + DESIRED_KEY);
        }
        DaemonSet desired;
        try {
            desired = parse(yaml);
        } catch (RuntimeException e) {
            return new Outcome(State.DESIRED_STATE_INVALID, "key " + DESIRED_KEY + " of ConfigMap " + namespace + "/"
                    + configMapName + " is not a usable DaemonSet: " + e.getMessage());
        }
        String hash = hashOf(desired);
        prepare(desired, configMap, hash);

        DaemonSet live = daemonSets().withName(name).get();
        if (live == null) {
            remember(daemonSets().resource(desired).create(), hash);
            return new Outcome(State.CREATED, "created agent DaemonSet " + namespace + "/" + name + " from ConfigMap "
                    + configMapName);
        }
        Optional<String> drift = drift(desired, live, hash);
        if (drift.isEmpty()) {
            return new Outcome(State.IN_SYNC, "agent DaemonSet " + namespace + "/" + name + " is in its desired state");
        }
        live.setSpec(desired.getSpec());
        live.getMetadata().setLabels(merged(live.getMetadata().getLabels(), desired.getMetadata().getLabels()));
        live.getMetadata().setAnnotations(merged(live.getMetadata().getAnnotations(), desired.getMetadata().getAnnotations()));
        if (!ownedBy(live, configMap)) {
            List<OwnerReference> owners = new ArrayList<>(Objects.requireNonNullElse(live.getMetadata().getOwnerReferences(), List.of()));
            owners.add(ownerRef(configMap));
            live.getMetadata().setOwnerReferences(owners);
        }
        // update, not patch: the whole spec is ours, so fields someone added by hand go away too; the resourceVersion
        // read above makes a concurrent change fail this write (retried on the next pass) instead of being lost
        remember(daemonSets().resource(live).update(), hash);
        return new Outcome(State.RESTORED, "put agent DaemonSet " + namespace + "/" + name + " back to its desired state ("
                + drift.get() + ")");
    }

    /** What differs between what we set and what is there, ignoring fields the API server filled in. */
    private Optional<String> drift(DaemonSet desired, DaemonSet live, String hash) {
        String liveHash = live.getMetadata().getAnnotations() == null ? null : live.getMetadata().getAnnotations().get(HASH_ANNOTATION);
        if (!hash.equals(liveHash)) {
            return Optional.of(liveHash == null ? "not yet written by the operator" : "desired state changed");
        }
        // Our own write, untouched since (spec changes move the generation): whatever differs is the API server's
        // normalisation of what we sent, not drift, and rewriting it would loop.
        boolean untouched = Objects.equals(live.getMetadata().getUid(), writtenUid) && hash.equals(writtenHash)
                && live.getMetadata().getGeneration() != null
                && live.getMetadata().getGeneration().equals(writtenGeneration);
        if (untouched) {
            return Optional.empty();
        }
        Optional<String> specDrift = firstDifference("spec", toJson(desired.getSpec()), toJson(live.getSpec()));
        if (specDrift.isPresent()) {
            return specDrift;
        }
        return firstDifference("metadata.labels", toJson(desired.getMetadata().getLabels()), toJson(live.getMetadata().getLabels()));
    }

    /**
     * The first place where {@code live} lacks or changes something {@code desired} sets. Extra fields in live (server
     * defaults) are no drift; an empty list or map in desired matches an absent one.
     */
    static Optional<String> firstDifference(String path, JsonNode desired, JsonNode live) {
        if (desired == null || desired.isNull() || desired.isMissingNode()) {
            return Optional.empty();
        }
        boolean liveAbsent = live == null || live.isNull() || live.isMissingNode();
        if (desired.isContainerNode() && desired.isEmpty() && (liveAbsent || live.isEmpty())) {
            return Optional.empty();
        }
        if (liveAbsent) {
            return Optional.of(path + " missing");
        }
        if (desired.isObject()) {
            if (!live.isObject()) {
                return Optional.of(path + " changed");
            }
            for (var field : desired.properties()) {
                Optional<String> d = firstDifference(path + "." + field.getKey(), field.getValue(), live.get(field.getKey()));
                if (d.isPresent()) {
                    return d;
                }
            }
            return Optional.empty();
        }
        if (desired.isArray()) {
            if (!live.isArray() || live.size() != desired.size()) {
                return Optional.of(path + " changed");
            }
            for (int i = 0; i < desired.size(); i++) {
                Optional<String> d = firstDifference(path + "[" + i + "]", desired.get(i), live.get(i));
                if (d.isPresent()) {
                    return d;
                }
            }
            return Optional.empty();
        }
        return desired.asText().equals(live.asText()) ? Optional.empty() : Optional.of(path + " changed");
    }

    private DaemonSet parse(String yaml) {
        Object parsed = client.getKubernetesSerialization().unmarshal(yaml);
        if (!(parsed instanceof DaemonSet daemonSet)) {
            throw new IllegalArgumentException("expected kind DaemonSet (apps/v1), got "
                    + (parsed instanceof HasMetadata h ? h.getKind() : parsed == null ? "nothing" : parsed.getClass().getSimpleName()));
        }
        if (daemonSet.getSpec() == null || daemonSet.getSpec().getTemplate() == null || daemonSet.getSpec().getSelector() == null) {
            throw new IllegalArgumentException("spec.selector and spec.template are required");
        }
        return daemonSet;
    }

    private void prepare(DaemonSet desired, ConfigMap configMap, String hash) {
        var meta = desired.getMetadata();
        if (meta.getName() != null && !name.equals(meta.getName())) {
            LOG.warnf("ConfigMap %s/%s names the DaemonSet %s; keeping it under the configured name %s", namespace,
                    configMapName, meta.getName(), name);
        }
        meta.setName(name);
        meta.setNamespace(namespace);
        Map<String, String> annotations = new LinkedHashMap<>(Objects.requireNonNullElse(meta.getAnnotations(), Map.of()));
        annotations.put(HASH_ANNOTATION, hash);
        meta.setAnnotations(annotations);
        meta.setOwnerReferences(List.of(ownerRef(configMap)));
        meta.setResourceVersion(null);
    }

    private String hashOf(DaemonSet desired) {
        Map<String, Object> whatWeSet = new LinkedHashMap<>();
        whatWeSet.put("labels", desired.getMetadata().getLabels());
        whatWeSet.put("annotations", desired.getMetadata().getAnnotations());
        whatWeSet.put("spec", desired.getSpec());
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256")
                    .digest(client.getKubernetesSerialization().asJson(whatWeSet).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest, 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    private JsonNode toJson(Object value) {
        try {
            return JSON.readTree(client.getKubernetesSerialization().asJson(value));
        } catch (Exception e) {
            throw new IllegalStateException("cannot compare DaemonSet fields", e);
        }
    }

    private void remember(DaemonSet written, String hash) {
        writtenUid = written.getMetadata().getUid();
        writtenGeneration = written.getMetadata().getGeneration();
        writtenHash = hash;
    }

    private static boolean ownedBy(DaemonSet live, ConfigMap configMap) {
        return live.getMetadata().getOwnerReferences() != null && live.getMetadata().getOwnerReferences().stream()
                .anyMatch(o -> Objects.equals(o.getUid(), configMap.getMetadata().getUid()));
    }

    private static OwnerReference ownerRef(ConfigMap configMap) {
        // Not a controller reference: the DaemonSet controller must stay free to manage its own pods; the reference is
        // there so that deleting the chart's ConfigMap (helm uninstall) garbage-collects the DaemonSet.
        return new OwnerReferenceBuilder().withApiVersion("v1").withKind("ConfigMap")
                .withName(configMap.getMetadata().getName()).withUid(configMap.getMetadata().getUid())
                .withBlockOwnerDeletion(false).build();
    }

    private static Map<String, String> merged(Map<String, String> live, Map<String, String> desired) {
        Map<String, String> result = new LinkedHashMap<>(Objects.requireNonNullElse(live, Map.of()));
        result.putAll(Objects.requireNonNullElse(desired, Map.of()));
        return result;
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<DaemonSet, io.fabric8.kubernetes.api.model.apps.DaemonSetList,
            io.fabric8.kubernetes.client.dsl.Resource<DaemonSet>> daemonSets() {
        return client.apps().daemonSets().inNamespace(namespace);
    }

    /** Log every pass at debug; a write, a new problem or the end of one at info/warn, with an Event. */
    private void report(Outcome outcome) {
        Outcome previous = last;
        last = outcome;
        boolean changed = previous == null || previous.state() != outcome.state() || !previous.message().equals(outcome.message());
        switch (outcome.state()) {
            case CREATED, RESTORED -> events.normal(daemonSetRef(), outcome.state() == State.CREATED ? "AgentDaemonSetCreated"
                    : "AgentDaemonSetRestored", outcome.message());
            case DESIRED_STATE_MISSING, DESIRED_STATE_INVALID -> {
                if (changed) {
                    LOG.warn(outcome.message());
                    events.warning(configMapRef(), outcome.state() == State.DESIRED_STATE_MISSING ? "AgentDaemonSetDesiredStateMissing"
                            : "AgentDaemonSetDesiredStateInvalid", outcome.message());
                }
            }
            case ABSENT, API_ERROR -> {
                if (changed) {
                    LOG.warn(outcome.message());
                    events.warning(daemonSetRef(), outcome.state() == State.ABSENT ? "AgentDaemonSetAbsent" : "AgentDaemonSetError",
                            outcome.message());
                }
            }
            case IN_SYNC, OBSERVED -> {
                if (previous != null && previous.state().problem()) {
                    LOG.infof("agent DaemonSet in order again: %s", outcome.message());
                } else {
                    LOG.debug(outcome.message());
                }
            }
        }
    }

    private DaemonSet daemonSetRef() {
        DaemonSet ref = new DaemonSet();
        ref.setMetadata(new io.fabric8.kubernetes.api.model.ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
        return ref;
    }

    private ConfigMap configMapRef() {
        return new ConfigMapBuilder().withNewMetadata().withName(configMapName).withNamespace(namespace).endMetadata().build();
    }
}
