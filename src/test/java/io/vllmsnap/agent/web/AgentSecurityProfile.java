package io.vllmsnap.agent.web;

import java.nio.file.Path;
import java.util.Map;

/**
 * The agent as in {@link AgentTestProfile}, with a request budget small enough to spend in a test (burst 10, one
 * a second), a small refusal cache, and its certificate in a Secret-like volume that is read again every second.
 */
public class AgentSecurityProfile extends AgentTestProfile {

    public static final int BURST = 10;
    public static final double PER_SECOND = 1;
    /** Fresh per test JVM: the test renews the certificate in it. */
    public static final Path TLS_VOLUME = Path.of("target/agent-tls-volume-" + ProcessHandle.current().pid()).toAbsolutePath();

    @Override
    protected Map<String, String> overrides() {
        if (!java.nio.file.Files.exists(TLS_VOLUME.resolve("tls.crt"))) {
            TestTls.secretVolume(TLS_VOLUME, TestTls.dir(), TestTls.SERVER_NAME);
        }
        return Map.of(
                "quarkus.tls.agent.key-store.pem.0.cert", TLS_VOLUME.resolve("tls.crt").toString(),
                "quarkus.tls.agent.key-store.pem.0.key", TLS_VOLUME.resolve("tls.key").toString(),
                "quarkus.tls.agent.reload-period", "1s",
                "vllmsnap.agent.client-burst", Integer.toString(BURST),
                "vllmsnap.agent.client-requests-per-second", Double.toString(PER_SECOND),
                "vllmsnap.agent.token-cache-size", "100");
    }
}
