package io.vllmsnap.operator;

import io.javaoperatorsdk.operator.Operator;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import org.jboss.logging.Logger;

/**
 * Starts the controllers unless {@code vllmsnap.operator.start=false} (the agent profile). The Operator SDK's own
 * start switch is fixed at build time, and both modes run from one build, so the choice is made here at run time.
 */
@ApplicationScoped
public class OperatorLifecycle {
    private static final Logger LOG = Logger.getLogger(OperatorLifecycle.class);

    private final OperatorSettings settings;
    private final Instance<Operator> operator;
    private final Instance<AgentSupervisor> agents;
    private volatile boolean started;

    public OperatorLifecycle(OperatorSettings settings, Instance<Operator> operator, Instance<AgentSupervisor> agents) {
        this.settings = settings;
        this.operator = operator;
        this.agents = agents;
    }

    void onStart(@Observes StartupEvent event) {
        if (!settings.start()) {
            LOG.info("vllmsnap.operator.start=false: controllers not started");
            return;
        }
        operator.get().start();
        agents.get().start();
        started = true;
    }

    void onStop(@Observes ShutdownEvent event) {
        if (started) {
            agents.get().stop(); // leaves the agent DaemonSet running: agents outlive operator restarts
            operator.get().stop();
        }
    }
}
