package io.vllmsnap.agent.web;

import io.quarkus.test.junit.QuarkusTestProfile;

import java.nio.file.Path;
import java.util.Map;

/** The application in agent mode, over TLS, with node storage under target/ and the real cgroup tree and /proc. */
public class AgentTestProfile implements QuarkusTestProfile {

    public static final String OPERATOR_USER = "system:serviceaccount:vllmsnap-system:vllmsnap-operator";
    /** Fresh per test JVM, so job IDs of an earlier run do not collide. */
    public static final Path STORAGE = Path.of("target/agent-api-storage-" + ProcessHandle.current().pid()).toAbsolutePath();

    @Override
    public Map<String, String> getConfigOverrides() {
        Path tls = TestTls.dir();
        return Map.ofEntries(
                Map.entry("vllmsnap.agent.enabled", "true"),
                Map.entry("vllmsnap.agent.node-name", "test-node"),
                Map.entry("vllmsnap.agent.storage-root", STORAGE.toString()),
                Map.entry("vllmsnap.agent.allowed-user", OPERATOR_USER),
                Map.entry("vllmsnap.agent.max-concurrent-jobs", "2"),
                Map.entry("quarkus.http.ssl.certificate.files", tls.resolve("tls.crt").toString()),
                Map.entry("quarkus.http.ssl.certificate.key-files", tls.resolve("tls.key").toString()),
                Map.entry("quarkus.http.test-ssl-port", "0"),
                Map.entry("quarkus.http.test-port", "0"),
                Map.entry("quarkus.kubernetes-client.devservices.enabled", "false"),
                Map.entry("quarkus.operator-sdk.start-operator", "false"));
    }
}
