package io.vllmsnap.operator;

import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/** Writes a Kubernetes Event (core/v1, what {@code kubectl describe} shows) for every transition of a resource. */
@ApplicationScoped
public class EventRecorder {
    private static final Logger LOG = Logger.getLogger(EventRecorder.class);
    private static final String COMPONENT = "vllmsnap-operator";
    private final AtomicLong sequence = new AtomicLong();
    private final KubernetesClient client;

    public EventRecorder(KubernetesClient client) {
        this.client = client;
    }

    public void normal(HasMetadata about, String reason, String message) {
        record(about, "Normal", reason, message);
    }

    public void warning(HasMetadata about, String reason, String message) {
        record(about, "Warning", reason, message);
    }

    private void record(HasMetadata about, String type, String reason, String message) {
        var meta = about.getMetadata();
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        // Unique per event, like the names kubectl shows: <object>.<hex>
        String name = meta.getName() + "." + Long.toHexString(System.currentTimeMillis()).toLowerCase(Locale.ROOT)
                + Long.toHexString(sequence.incrementAndGet());
        var event = new EventBuilder()
                .withNewMetadata().withName(name).withNamespace(meta.getNamespace()).endMetadata()
                .withNewInvolvedObject()
                .withApiVersion(about.getApiVersion()).withKind(about.getKind())
                .withName(meta.getName()).withNamespace(meta.getNamespace()).withUid(meta.getUid())
                .withResourceVersion(meta.getResourceVersion())
                .endInvolvedObject()
                .withType(type).withReason(reason).withMessage(message)
                .withFirstTimestamp(now).withLastTimestamp(now).withCount(1)
                .withNewSource().withComponent(COMPONENT).endSource()
                .withReportingComponent(COMPONENT)
                .build();
        LOG.infof("%s %s/%s %s: %s", about.getKind(), meta.getNamespace(), meta.getName(), reason, message);
        try {
            client.v1().events().inNamespace(meta.getNamespace()).resource(event).create();
        } catch (KubernetesClientException e) {
            // An event is a courtesy to the user; failing to write one must not fail the reconciliation.
            LOG.warnf("could not record event %s for %s/%s: %s", reason, meta.getNamespace(), meta.getName(), e.getMessage());
        }
    }
}
