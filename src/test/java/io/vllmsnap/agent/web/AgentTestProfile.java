package io.vllmsnap.agent.web;

import io.quarkus.test.junit.QuarkusTestProfile;

import java.nio.file.Path;
import java.util.Map;

/** The application in agent mode, over TLS, with node storage under target/ and the real cgroup tree and /proc. */
public class AgentTestProfile implements QuarkusTestProfile {

    public static final String OPERATOR_USER = TestTokens.OPERATOR_USER;
    /** Fresh per test JVM, so job IDs of an earlier run do not collide. */
    public static final Path STORAGE = Path.of("target/agent-api-storage-" + ProcessHandle.current().pid()).toAbsolutePath();

    @Override
    public Map<String, String> getConfigOverrides() {
        Map<String, String> all = new java.util.HashMap<>(base(TestTls.dir()));
        all.putAll(overrides());
        return all;
    }

    /** What a variant of this profile changes. */
    protected Map<String, String> overrides() {
        return Map.of();
    }

    private static Map<String, String> base(Path tls) {
        return Map.ofEntries(
                Map.entry("vllmsnap.agent.enabled", "true"),
                Map.entry("vllmsnap.agent.node-name", "test-node"),
                Map.entry("vllmsnap.agent.storage-root", STORAGE.toString()),
                Map.entry("vllmsnap.agent.allowed-user", OPERATOR_USER),
                Map.entry("vllmsnap.agent.max-concurrent-jobs", "2"),
                Map.entry("vllmsnap.agent.token-audience", TestTokens.AGENT_AUDIENCE),
                // as in the agent profile: TLS on the API and the management port from one reloadable configuration
                Map.entry("quarkus.tls.agent.key-store.pem.0.cert", tls.resolve("tls.crt").toString()),
                Map.entry("quarkus.tls.agent.key-store.pem.0.key", tls.resolve("tls.key").toString()),
                Map.entry("quarkus.http.tls-configuration-name", "agent"),
                Map.entry("quarkus.management.tls-configuration-name", "agent"),
                Map.entry("quarkus.http.insecure-requests", "disabled"),
                Map.entry("quarkus.http.http2", "false"),
                Map.entry("quarkus.http.limits.max-body-size", "64K"),
                Map.entry("quarkus.http.test-ssl-port", "0"),
                Map.entry("quarkus.http.test-port", "0"),
                Map.entry("quarkus.kubernetes-client.devservices.enabled", "false"),
                Map.entry("quarkus.operator-sdk.start-operator", "false"));
    }
}
