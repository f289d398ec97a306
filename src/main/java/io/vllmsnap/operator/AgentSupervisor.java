package io.vllmsnap.operator;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.vllmsnap.agent.api.NodeAgents;
import io.vllmsnap.agent.client.AgentClientConfig;
import jakarta.enterprise.context.ApplicationScoped;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jboss.logging.Logger;

/**
 * Runs the agent DaemonSet keeper and the node report: on start, on every change of the DaemonSet, its ConfigMap or
 * an agent pod (watched), when this replica becomes leader, and periodically as a safety net. Passes of one loop never
 * overlap; only the leading replica writes. Stopping the operator stops the passes and leaves the DaemonSet alone.
 */
@ApplicationScoped
public class AgentSupervisor {
    private static final Logger LOG = Logger.getLogger(AgentSupervisor.class);

    private final KubernetesClient client;
    private final AgentDaemonSetSettings settings;
    private final AgentClientConfig agentClient;
    private final NodeAgents agents;
    private final EventRecorder events;
    private final Leadership leadership;
    private final ObjectMapper json;
    private final List<SharedIndexInformer<?>> informers = new ArrayList<>();
    private final AtomicBoolean keepQueued = new AtomicBoolean();
    private final AtomicBoolean reportQueued = new AtomicBoolean();
    private ScheduledExecutorService worker;
    private AgentDaemonSetKeeper keeper;
    private NodeAgentReporter reporter;

    public AgentSupervisor(KubernetesClient client, AgentDaemonSetSettings settings, AgentClientConfig agentClient,
            NodeAgents agents, EventRecorder events, Leadership leadership, ObjectMapper json) {
        this.client = client;
        this.settings = settings;
        this.agentClient = agentClient;
        this.agents = agents;
        this.events = events;
        this.leadership = leadership;
        this.json = json;
    }

    synchronized void start() {
        String ns = settings.namespace();
        keeper = new AgentDaemonSetKeeper(client, events, settings.managedBy(), ns, settings.name(), settings.configmap());
        reporter = new NodeAgentReporter(client, agents, json, ns, podLabels(agentClient.podSelector()));
        // two threads: a slow agent in the report must not hold up putting the DaemonSet back (each loop is serial)
        worker = Executors.newScheduledThreadPool(2, Thread.ofPlatform().name("vllmsnap-agent-supervisor-", 0).daemon().factory());
        worker.scheduleWithFixedDelay(this::keepNow, 0, settings.resyncInterval().toMillis(), TimeUnit.MILLISECONDS);
        worker.scheduleWithFixedDelay(this::reportNow, 0, settings.reportInterval().toMillis(), TimeUnit.MILLISECONDS);
        leadership.whenLeading(() -> {
            keepSoon();
            reportSoon();
        });
        try {
            informers.add(client.apps().daemonSets().inNamespace(ns).withName(settings.name()).inform(onChange(this::keepSoon)));
            if (settings.managedBy() == AgentDaemonSetSettings.ManagedBy.OPERATOR) {
                informers.add(client.configMaps().inNamespace(ns).withName(settings.configmap()).inform(onChange(this::keepSoon)));
            }
            informers.add(client.pods().inNamespace(ns).withLabels(podLabels(agentClient.podSelector()))
                    .inform(onChange(this::reportSoon)));
        } catch (RuntimeException e) {
            // without watches the periodic passes still keep everything, only later
            LOG.warnf("cannot watch the agent DaemonSet, its ConfigMap or agent pods in %s (periodic checks continue): %s", ns,
                    e.getMessage());
        }
        LOG.infof("agent DaemonSet %s/%s kept by %s; node agent reports every %s", ns, settings.name(),
                settings.managedBy().name().toLowerCase(java.util.Locale.ROOT), settings.reportInterval());
    }

    synchronized void stop() {
        informers.forEach(SharedIndexInformer::close);
        informers.clear();
        if (worker != null) {
            worker.shutdownNow();
        }
    }

    private void keepSoon() {
        if (keepQueued.compareAndSet(false, true)) {
            submit(this::keepNow);
        }
    }

    private void reportSoon() {
        if (reportQueued.compareAndSet(false, true)) {
            submit(this::reportNow);
        }
    }

    private void submit(Runnable pass) {
        try {
            worker.execute(pass);
        } catch (RejectedExecutionException e) {
            LOG.debug("operator stopping: pass not run");
        }
    }

    private void keepNow() {
        keepQueued.set(false);
        if (leadership.leads()) {
            keeper.keep();
        }
    }

    private void reportNow() {
        reportQueued.set(false);
        if (!leadership.leads()) {
            return;
        }
        try {
            reporter.report();
        } catch (RuntimeException e) {
            // a failed pass (API server away) is retried on the next one; the worker thread must survive it
            LOG.warnf("node agent report failed: %s", e.getMessage());
        }
    }

    private static <T extends HasMetadata> ResourceEventHandler<T> onChange(Runnable action) {
        return new ResourceEventHandler<>() {
            @Override
            public void onAdd(T obj) {
                action.run();
            }

            @Override
            public void onUpdate(T oldObj, T newObj) {
                action.run();
            }

            @Override
            public void onDelete(T obj, boolean deletedFinalStateUnknown) {
                action.run();
            }
        };
    }

    static Map<String, String> podLabels(String selector) {
        Map<String, String> labels = new LinkedHashMap<>();
        for (String part : selector.split(",")) {
            String[] kv = part.trim().split("=", 2);
            if (kv.length == 2 && !kv[0].isBlank()) {
                labels.put(kv[0].trim(), kv[1].trim());
            }
        }
        return labels;
    }
}
