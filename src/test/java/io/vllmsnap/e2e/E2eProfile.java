package io.vllmsnap.e2e;

import io.quarkus.test.junit.QuarkusTestProfile;

import java.util.Map;

/** The operator of the end-to-end tests: real agents behind {@link E2eNodeAgents}, not the unit tests' fake. */
public class E2eProfile implements QuarkusTestProfile {
    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of("quarkus.arc.exclude-types", "io.vllmsnap.operator.FakeNodeAgents",
                // restores of real processes take seconds: keep the test's wait loops short but not busy
                "vllmsnap.operator.job-poll-interval", "250ms");
    }
}
