package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Instant;
import java.time.temporal.ChronoUnit;

/** What both reconcilers need to treat status as their only memory. */
@ApplicationScoped
public class Statuses {
    private final KubernetesClient client;

    public Statuses(KubernetesClient client) {
        this.client = client;
    }

    /**
     * The resource as the API server has it now. The informer cache can lag behind our own last status patch (another
     * event can trigger the next reconciliation first); status is our only memory, so it is read fresh.
     */
    public <T extends HasMetadata> T latest(T cached) {
        T fresh = client.resource(cached).get();
        return fresh != null ? fresh : cached;
    }

    /** A status as JSON, to patch only when a reconciliation changed it. */
    public String json(Object status) {
        return status == null ? "" : client.getKubernetesSerialization().asJson(status);
    }

    /** Timestamps in status, to the second like Kubernetes' own. */
    public static String now() {
        return Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    }
}
