package io.vllmsnap.e2e;

import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.config.ConfigurationService;
import io.quarkus.runtime.ShutdownEvent;
import io.vllmsnap.operator.VllmRestoreReconciler;
import io.vllmsnap.operator.VllmSnapshotReconciler;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;

/**
 * Stops the running operator and starts a new one with the same reconcilers, as a new operator pod after the old one
 * was killed: everything it knows comes from the API server and the agents. The last one started is stopped with the
 * application.
 */
@ApplicationScoped
public class OperatorRestarts {
    @Inject
    Operator first;
    @Inject
    ConfigurationService configurationService;
    @Inject
    VllmSnapshotReconciler snapshotReconciler;
    @Inject
    VllmRestoreReconciler restoreReconciler;

    /** Static so that the shutdown observer needs no instance (other test profiles never make one). */
    private static Operator current;

    synchronized void stop() {
        // the operator the application started, or the last one started here
        (current != null ? current : first).stop();
    }

    synchronized void start() {
        Operator fresh = new Operator(configurationService);
        fresh.register(snapshotReconciler);
        fresh.register(restoreReconciler);
        fresh.start();
        current = fresh;
    }

    static void onStop(@Observes ShutdownEvent event) {
        if (current != null) {
            current.stop();
        }
    }
}
