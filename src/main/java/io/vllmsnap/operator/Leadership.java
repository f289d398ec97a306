package io.vllmsnap.operator;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.jboss.logging.Logger;

/**
 * Whether this replica may write what only one replica should (the agent DaemonSet, node labels). The controllers
 * learn it from the Operator SDK; the work outside them asks here, fed by the same Lease's callbacks.
 */
@ApplicationScoped
public class Leadership {
    private static final Logger LOG = Logger.getLogger(Leadership.class);
    private final boolean electionActive;
    private volatile boolean leading;
    private final List<Runnable> onLead = new CopyOnWriteArrayList<>();

    /**
     * Without an election (tests, local runs: vllmsnap.operator.leader-election=false) this process is the only
     * replica and so always leads.
     */
    @Inject
    public Leadership(OperatorSettings settings) {
        this(settings.leaderElection());
    }

    Leadership(boolean electionActive) {
        this.electionActive = electionActive;
    }

    public boolean leads() {
        return !electionActive || leading;
    }

    /** Runs {@code action} whenever this replica becomes the leader (so its work starts without waiting a period). */
    public void whenLeading(Runnable action) {
        onLead.add(action);
    }

    void started() {
        LOG.info("this replica leads: it keeps the agent DaemonSet and the node reports");
        leading = true;
        onLead.forEach(Runnable::run);
    }

    void stopped() {
        leading = false;
    }
}
