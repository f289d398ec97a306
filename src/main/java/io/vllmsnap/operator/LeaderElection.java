package io.vllmsnap.operator;

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
    LeaderElectionConfiguration leaderElectionConfiguration() {
        return new LeaderElectionConfiguration(LEASE_NAME);
    }
}
