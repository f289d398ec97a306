package io.vllmsnap.operator;

import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/**
 * Leader election of the operator Deployment: only one replica reconciles at a time (a Lease named
 * {@value #LEASE_NAME} in the operator's namespace). Active in the profiles listed by
 * {@code quarkus.operator-sdk.activate-leader-election-for-profiles}.
 */
@ApplicationScoped
public class LeaderElection {
    public static final String LEASE_NAME = "vllmsnap-operator";

    @Produces
    @Singleton
    LeaderElectionConfiguration leaderElectionConfiguration(Leadership leadership) {
        // The SDK's defaults, plus callbacks telling Leadership (work outside the controllers) who leads.
        return new LeaderElectionConfiguration(LEASE_NAME, null, LeaderElectionConfiguration.LEASE_DURATION_DEFAULT_VALUE,
                LeaderElectionConfiguration.RENEW_DEADLINE_DEFAULT_VALUE, LeaderElectionConfiguration.RETRY_PERIOD_DEFAULT_VALUE,
                null, new LeaderCallbacks(leadership::started, leadership::stopped, leader -> { }), true);
    }
}
