package io.vllmsnap.agent.client;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import io.vllmsnap.agent.web.TestTls;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The operator's side of agent TLS: with per-pod certificates the key of one node's agent does not pass for
 * another's, and a changed CA file is trusted without a new client context.
 */
class AgentTlsTest {

    static final String TEMPLATE = AgentTls.POD_PLACEHOLDER + ".vllmsnap-agent.vllmsnap.svc";

    @TempDir
    Path dir;
    HttpsServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.stop(0);
        }
    }

    /** An HTTPS server on loopback presenting the certificate in {@code volume} (made by TestTls). */
    URI serve(Path volume) throws Exception {
        Path p12 = volume.resolve("server.p12");
        Process openssl = new ProcessBuilder("openssl", "pkcs12", "-export", "-in", volume.resolve("tls.crt").toString(),
                "-inkey", volume.resolve("tls.key").toString(), "-out", p12.toString(), "-passout", "pass:test")
                .redirectErrorStream(true).start();
        assertThat(openssl.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(openssl.exitValue()).as(new String(openssl.getInputStream().readAllBytes())).isZero();
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(p12)) {
            keys.load(in, "test".toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, "test".toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setHttpsConfigurator(new HttpsConfigurator(ctx));
        server.createContext("/", exchange -> {
            byte[] body = "{}".getBytes();
            exchange.sendResponseHeaders(200, body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        server.start();
        return URI.create("https://127.0.0.1:" + server.getAddress().getPort() + "/");
    }

    static int call(SSLContext tls, URI uri) throws IOException, InterruptedException {
        // a new client each time: a pooled connection would skip the handshake being tested
        HttpClient http = HttpClient.newBuilder().sslContext(tls).version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5)).build();
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString())
                .statusCode();
    }

    @Test
    void withPerPodCertificatesOnlyTheDialledPodsCertificatePasses() throws Exception {
        Path ca = TestTls.newCa(dir.resolve("ca"), "agents-ca");
        URI nodeB = serve(TestTls.secretVolume(dir.resolve("agent-b"), ca, "vllmsnap-agent-b7x2k.vllmsnap-agent.vllmsnap.svc"));
        Files.copy(ca.resolve("ca.crt"), dir.resolve("trusted.crt"));
        AgentPeers peers = new AgentPeers();
        SSLContext operator = AgentTls.context(dir.resolve("trusted.crt"), TEMPLATE, Duration.ofSeconds(30), peers);

        // the operator meant the agent pod of node A, and the address answers with node B's agent key
        peers.record("127.0.0.1", "vllmsnap-agent-a9q4m");
        assertThatThrownBy(() -> call(operator, nodeB)).isInstanceOf(IOException.class);
        // an address no agent pod was looked up at
        AgentPeers none = new AgentPeers();
        assertThatThrownBy(() -> call(AgentTls.context(dir.resolve("trusted.crt"), TEMPLATE, Duration.ZERO, none), nodeB))
                .isInstanceOf(IOException.class);
        // the right pod
        peers.record("127.0.0.1", "vllmsnap-agent-b7x2k");
        assertThat(call(operator, nodeB)).isEqualTo(200);
    }

    @Test
    void aSharedNameStillWorksAndAChangedCaFileIsTrustedWithoutANewContext() throws Exception {
        Path oldCa = TestTls.newCa(dir.resolve("old-ca"), "old-ca");
        Path newCa = TestTls.newCa(dir.resolve("new-ca"), "new-ca");
        URI agent = serve(TestTls.secretVolume(dir.resolve("agent"), newCa, "vllmsnap-agent.vllmsnap.svc"));
        Path trusted = dir.resolve("trusted.crt");
        Files.copy(oldCa.resolve("ca.crt"), trusted);
        SSLContext operator = AgentTls.context(trusted, "vllmsnap-agent.vllmsnap.svc", Duration.ZERO, AgentPeers.NONE);

        assertThatThrownBy(() -> call(operator, agent)).isInstanceOf(IOException.class);
        Files.writeString(trusted, "not a certificate");
        assertThatThrownBy(() -> call(operator, agent)).as("a broken file keeps the last good CA").isInstanceOf(IOException.class);
        Files.copy(newCa.resolve("ca.crt"), trusted, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThat(call(operator, agent)).isEqualTo(200);
        SSLContext wrongName = AgentTls.context(trusted, "someone-else", Duration.ZERO, AgentPeers.NONE);
        assertThatThrownBy(() -> call(wrongName, agent)).isInstanceOf(IOException.class);
    }

    @Test
    void addressesAreOnePeerWhateverTheirSpelling() {
        AgentPeers peers = new AgentPeers();
        peers.record("fd00:10:0:0:0:0:0:7", "agent-v6");
        peers.record("10.0.3.7", "agent-v4");
        assertThat(peers.podAt("[fd00:10::7]")).contains("agent-v6");
        assertThat(peers.podAt("fd00:10::7")).contains("agent-v6");
        assertThat(peers.podAt("10.0.3.7")).contains("agent-v4");
        for (String notALiteral : List.of("abc", "agent.example", "", "10.0.3")) {
            assertThat(peers.podAt(notALiteral)).as(notALiteral).isEmpty();
        }
    }
}
