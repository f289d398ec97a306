package io.vllmsnap.agent.web;

import io.quarkus.test.junit.QuarkusTestProfile;

import java.util.Map;

/** The same application outside agent mode (as the operator runs it): the agent API must not be served. */
public class OperatorModeProfile implements QuarkusTestProfile {

    @Override
    public Map<String, String> getConfigOverrides() {
        return Map.of(
                "vllmsnap.agent.enabled", "false",
                "quarkus.http.test-port", "0",
                "quarkus.kubernetes-client.devservices.enabled", "false",
                "quarkus.operator-sdk.start-operator", "false");
    }
}
