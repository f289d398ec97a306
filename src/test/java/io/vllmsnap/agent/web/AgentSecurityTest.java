package io.vllmsnap.agent.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import io.vllmsnap.agent.client.AgentPeers;
import io.vllmsnap.agent.client.AgentTls;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static io.vllmsnap.agent.web.TestTokens.AGENT_AUDIENCE;
import static io.vllmsnap.agent.web.TestTokens.OPERATOR_USER;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The agent's HTTP surface as an attacker meets it (issue 16): what answers without a token, which tokens pass,
 * what a flood of junk costs, what bodies are read, that every refusal has the API's JSON shape, and that a renewed
 * certificate is served (and a renewed CA trusted) without a restart. Each test talks from its own loopback address
 * (127.0.0.x), so each has its own request budget.
 */
@QuarkusTest
@TestProfile(AgentSecurityProfile.class)
@WithKubernetesTestServer
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AgentSecurityTest {

    static final String OPERATOR_TOKEN = TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, Instant.now().plusSeconds(7200));
    static final String VALID_SNAPSHOT = "{\"jobId\":\"snap-sec\",\"namespace\":\"team-a\",\"imageId\":\"img\","
            + "\"podUid\":\"3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b\",\"containerName\":\"vllm\",\"containerId\":\"containerd://"
            + "a".repeat(64) + "\",\"sleepLevel\":0,\"leaveRunning\":true,\"vllmPort\":8000}";
    static final ObjectMapper JSON = new ObjectMapper();

    @KubernetesTestServer
    KubernetesServer server;

    @TestHTTPResource(value = "/", tls = true)
    URI apiBase;

    @TestHTTPResource(value = "/", tls = true, management = true)
    URI managementBase;

    URI api;
    URI management;

    @BeforeEach
    void setUp() {
        TestTokens.answerReviews(server);
        // by address, so that a client's source address (127.0.0.x) can reach it
        api = URI.create("https://127.0.0.1:" + apiBase.getPort() + "/");
        management = URI.create("https://127.0.0.1:" + managementBase.getPort() + "/");
    }

    static HttpClient client(String sourceAddress) throws Exception {
        return client(sourceAddress, AgentTls.context(TestTls.dir().resolve("ca.crt"), TestTls.SERVER_NAME));
    }

    static HttpClient client(String sourceAddress, SSLContext tls) throws Exception {
        return HttpClient.newBuilder().sslContext(tls).version(HttpClient.Version.HTTP_1_1)
                .localAddress(InetAddress.getByName(sourceAddress)).connectTimeout(Duration.ofSeconds(10)).build();
    }

    static HttpResponse<String> send(HttpClient http, HttpRequest.Builder request, String token) throws Exception {
        if (token != null) {
            request.header("Authorization", "Bearer " + token);
        }
        return http.send(request.timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> get(HttpClient http, URI root, String path, String token) throws Exception {
        return send(http, HttpRequest.newBuilder(root.resolve(path)).GET(), token);
    }

    HttpResponse<String> post(HttpClient http, String path, String token, String contentType, HttpRequest.BodyPublisher body)
            throws Exception {
        return send(http, HttpRequest.newBuilder(api.resolve(path)).header("Content-Type", contentType).POST(body), token);
    }

    /** Every refusal: JSON, with a reason and a message. */
    static JsonNode apiError(HttpResponse<String> response, int status, String reason) throws IOException {
        assertThat(response.statusCode()).as(response.request().method() + " " + response.request().uri() + ": " + response.body())
                .isEqualTo(status);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(t -> assertThat(t).startsWith("application/json"));
        JsonNode body = JSON.readTree(response.body());
        assertThat(body.path("reason").asText()).isEqualTo(reason);
        assertThat(body.path("message").asText()).isNotBlank();
        assertThat(body.size()).as("one error shape: reason and message").isEqualTo(2);
        return body;
    }

    /** main served /q/metrics and /q/health on the API port to anyone. */
    @Test
    @Order(1)
    void theApiPortAnswersOnlyWithATokenAndHealthAndMetricsAreOnTheManagementPort() throws Exception {
        HttpClient http = client("127.0.0.11");
        for (String path : List.of("q/metrics", "q/health", "q/health/live", "q/health/ready", "metrics", "")) {
            apiError(get(http, api, path, null), 401, "Unauthorized");
        }
        apiError(get(http, api, "q/metrics", OPERATOR_TOKEN), 404, "NotFound");

        HttpResponse<String> metrics = get(http, management, "q/metrics", null);
        assertThat(metrics.statusCode()).isEqualTo(200);
        assertThat(metrics.body()).contains("vllmsnap_agent_auth_failures_total").contains("vllmsnap_agent_queue_depth");
        for (String probe : List.of("q/health/started", "q/health/live", "q/health/ready")) {
            assertThat(get(http, management, probe, null).statusCode()).as(probe).isEqualTo(200);
        }
        assertThat(get(http, management, "api/v1/capabilities", OPERATOR_TOKEN).statusCode())
                .as("the API is not served on the management port").isEqualTo(404);
        assertThat(get(http, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);
    }

    /** main accepted the operator's API-server token: any agent, or whoever held a node, could replay it there. */
    @Test
    @Order(2)
    void theOperatorsApiServerTokenAndOtherAudiencesAreRefused() throws Exception {
        HttpClient http = client("127.0.0.12");
        String apiServerToken = TestTokens.issue(OPERATOR_USER, TestTokens.API_SERVER_AUDIENCE, Instant.now().plusSeconds(3600));
        String otherAudience = TestTokens.issue(OPERATOR_USER, "some-other-service", Instant.now().plusSeconds(3600));
        String relabelled = TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, Instant.now().plusSeconds(3600));
        apiError(get(http, api, "api/v1/capabilities", apiServerToken), 401, "Unauthorized");
        apiError(get(http, api, "api/v1/capabilities", otherAudience), 401, "Unauthorized");
        apiError(get(http, api, "api/v1/capabilities", relabelled), 401, "Unauthorized");
        apiError(get(http, api, "api/v1/capabilities", TestTokens.issue(TestTokens.OTHER_USER, AGENT_AUDIENCE,
                Instant.now().plusSeconds(3600))), 403, "Forbidden");
        assertThat(get(http, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);
    }

    /** main ignored unknown fields and answered malformed JSON with an empty 400. */
    @Test
    @Order(3)
    void bodiesAreReadStrictlyAndEveryErrorHasTheApiShape() throws Exception {
        HttpClient http = client("127.0.0.13");
        String unknown = VALID_SNAPSHOT.replace("}", ",\"hostPath\":\"/\"}");
        JsonNode e = apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "application/json", body(unknown)), 400, "UnknownField");
        assertThat(e.path("message").asText()).contains("hostPath");
        apiError(post(http, "api/v1/jobs/restore", OPERATOR_TOKEN, "application/json",
                body("{\"jobId\":\"r\",\"expected\":{\"gpuModel\":\"x\",\"extra\":1}}")), 400, "UnknownField");
        for (String malformed : List.of("{", "", "null", "[1]", VALID_SNAPSHOT + " trailing",
                VALID_SNAPSHOT.replace("\"vllmPort\":8000", "\"vllmPort\":\"8000\""),
                VALID_SNAPSHOT.replace("{\"jobId\":\"snap-sec\"", "{\"jobId\":\"snap-sec\",\"jobId\":\"other\""))) {
            apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "application/json", body(malformed)), 400, "MalformedJson");
        }
        apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "text/plain", body(VALID_SNAPSHOT)), 415, "UnsupportedMediaType");
        apiError(get(http, api, "api/v1/no-such-thing", OPERATOR_TOKEN), 404, "NotFound");
        apiError(send(http, HttpRequest.newBuilder(api.resolve("api/v1/capabilities")).DELETE(), OPERATOR_TOKEN), 405, "MethodNotAllowed");
        apiError(get(http, api, "api/v1/jobs/Bad_Id", OPERATOR_TOKEN), 400, "InvalidId");
    }

    /** main read bodies up to 10 MiB. */
    @Test
    @Order(4)
    void bodiesAreAtMost64KiBAndMustDeclareTheirLength() throws Exception {
        HttpClient http = client("127.0.0.14");
        String invalidId = VALID_SNAPSHOT.replace("snap-sec", "Not_A_Label");
        String exactly = invalidId + " ".repeat(65536 - invalidId.length());
        assertThat(exactly.getBytes(StandardCharsets.UTF_8)).hasSize(65536);
        // read and parsed (the ID is refused): 64 KiB is allowed
        apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "application/json", body(exactly)), 400, "InvalidId");
        apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "application/json", body(exactly + " ")), 413, "PayloadTooLarge");
        apiError(post(http, "api/v1/jobs/snapshot", null, "application/json", body(" ".repeat(1 << 20))), 413, "PayloadTooLarge");
        apiError(post(http, "api/v1/jobs/snapshot", OPERATOR_TOKEN, "application/json",
                HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(VALID_SNAPSHOT.getBytes(StandardCharsets.UTF_8)))),
                411, "LengthRequired");
    }

    @Test
    @Order(5)
    void aClientWithoutAnApprovedTokenHasABudgetOfItsOwn() throws Exception {
        HttpClient first = client("127.0.0.17");
        for (int i = 0; i < AgentSecurityProfile.BURST; i++) {
            apiError(get(first, api, "api/v1/capabilities", null), 401, "Unauthorized");
        }
        HttpResponse<String> limited = get(first, api, "api/v1/capabilities", null);
        apiError(limited, 429, "TooManyRequests");
        assertThat(limited.headers().firstValueAsLong("Retry-After").orElseThrow()).isBetween(1L, 2L);
        // another address is not slowed down by this one, and the operator's approved token never is
        apiError(get(client("127.0.0.18"), api, "api/v1/capabilities", null), 401, "Unauthorized");
        assertThat(get(first, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).as("approved: no budget").isEqualTo(200);
    }

    /**
     * 1,100 junk tokens on main cost 1,100 TokenReviews and emptied the cache holding the operator's approval.
     * Here junk costs no review at all, well-formed forgeries at most one per request the budget allows, and the
     * operator stays in without a new review.
     */
    @Test
    @Order(6)
    void aFloodOfJunkTokensCostsNoReviewsAndLeavesTheOperatorIn() throws Exception {
        HttpClient attacker = client("127.0.0.15");
        assertThat(get(attacker, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);
        int reviewsBefore = TestTokens.reviews();

        int refused = 0;
        int limited = 0;
        for (int i = 0; i < 1100; i++) {
            int status = get(attacker, api, "api/v1/capabilities", TestTokens.junk()).statusCode();
            refused += status == 401 ? 1 : 0;
            limited += status == 429 ? 1 : 0;
        }
        assertThat(refused + limited).isEqualTo(1100);
        assertThat(TestTokens.reviews()).as("junk costs no TokenReview").isEqualTo(reviewsBefore);
        assertThat(get(attacker, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);
        assertThat(TestTokens.reviews()).as("the operator's approval is still cached").isEqualTo(reviewsBefore);

        HttpClient forger = client("127.0.0.16");
        long start = System.nanoTime();
        limited = 0;
        for (int i = 0; i < 1100; i++) {
            String forged = TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, Instant.now().plusSeconds(3600));
            limited += get(forger, api, "api/v1/capabilities", forged).statusCode() == 429 ? 1 : 0;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        int allowed = AgentSecurityProfile.BURST + (int) Math.ceil(seconds * AgentSecurityProfile.PER_SECOND) + 1;
        assertThat(TestTokens.reviews() - reviewsBefore).as("reviews of 1,100 forgeries in %.1f s", seconds)
                .isPositive().isLessThanOrEqualTo(allowed);
        assertThat(limited).isGreaterThanOrEqualTo(1100 - allowed);
        int reviews = TestTokens.reviews();
        assertThat(get(forger, api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);
        assertThat(TestTokens.reviews()).isEqualTo(reviews);
        assertThat(get(attacker, management, "q/metrics", null).body())
                .containsPattern("vllmsnap_agent_auth_failures_total\\{[^}]*reason=\"rate-limited\"[^}]*} [1-9]")
                .containsPattern("vllmsnap_agent_auth_failures_total\\{[^}]*reason=\"malformed-token\"[^}]*} [1-9]");
    }

    /**
     * A renewed certificate (here: written as kubelet updates a Secret volume) is served on both ports without a
     * restart; a certificate from a new CA is trusted by the operator's client once the CA file it reads names it,
     * again without a new client context.
     */
    @Test
    @Order(100)
    void renewedCertificatesAreServedAndANewCaIsTrustedWithoutARestart() throws Exception {
        BigInteger apiSerial = servedCertificate(api).getSerialNumber();
        assertThat(servedCertificate(management).getSerialNumber()).isEqualTo(apiSerial);

        TestTls.secretVolume(AgentSecurityProfile.TLS_VOLUME, TestTls.dir(), TestTls.SERVER_NAME);
        BigInteger renewed = readCertificate(AgentSecurityProfile.TLS_VOLUME.resolve("tls.crt")).getSerialNumber();
        assertThat(renewed).isNotEqualTo(apiSerial);
        await().atMost(20, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(250)).untilAsserted(() -> {
            assertThat(servedCertificate(api).getSerialNumber()).isEqualTo(renewed);
            assertThat(servedCertificate(management).getSerialNumber()).isEqualTo(renewed);
        });

        // The operator's side: its CA file, re-read when it changes.
        Path caFile = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "operator-ca").resolve("ca.crt");
        Files.copy(TestTls.dir().resolve("ca.crt"), caFile);
        SSLContext operatorTls = AgentTls.context(caFile, TestTls.SERVER_NAME, Duration.ZERO, AgentPeers.NONE);
        assertThat(get(client("127.0.0.19", operatorTls), api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);

        Path newCa = TestTls.newCa(Files.createTempDirectory(Path.of("target").toAbsolutePath(), "new-ca"), "vllmsnap-test-ca-2");
        TestTls.secretVolume(AgentSecurityProfile.TLS_VOLUME, newCa, TestTls.SERVER_NAME);
        BigInteger fromNewCa = readCertificate(AgentSecurityProfile.TLS_VOLUME.resolve("tls.crt")).getSerialNumber();
        await().atMost(20, TimeUnit.SECONDS).pollInterval(Duration.ofMillis(250))
                .until(() -> servedCertificate(api).getSerialNumber().equals(fromNewCa));
        assertThatThrownBy(() -> get(client("127.0.0.19", operatorTls), api, "api/v1/capabilities", OPERATOR_TOKEN))
                .as("the old CA does not sign the new certificate").isInstanceOf(IOException.class);
        // both CAs during the changeover, as an operator would roll a CA
        Files.writeString(caFile, Files.readString(TestTls.dir().resolve("ca.crt")) + Files.readString(newCa.resolve("ca.crt")));
        assertThat(get(client("127.0.0.19", operatorTls), api, "api/v1/capabilities", OPERATOR_TOKEN).statusCode()).isEqualTo(200);

        // back to the first CA, for whatever runs after this class in the same application
        TestTls.secretVolume(AgentSecurityProfile.TLS_VOLUME, TestTls.dir(), TestTls.SERVER_NAME);
    }

    private static HttpRequest.BodyPublisher body(String s) {
        return HttpRequest.BodyPublishers.ofString(s);
    }

    private static X509Certificate readCertificate(Path pem) throws Exception {
        try (var in = Files.newInputStream(pem)) {
            return (X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    /** The leaf certificate a TLS handshake at {@code root} presents (whoever signed it). */
    private static X509Certificate servedCertificate(URI root) throws Exception {
        AtomicReference<X509Certificate> seen = new AtomicReference<>();
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] chain, String authType) {
            }

            public void checkServerTrusted(X509Certificate[] chain, String authType) {
                seen.set(chain[0]);
            }

            public X509Certificate[] getAcceptedIssuers() {
                return new X509Certificate[0];
            }
        }}, null);
        try (SSLSocket socket = (SSLSocket) ctx.getSocketFactory().createSocket(root.getHost(), root.getPort())) {
            socket.setSoTimeout(10_000);
            socket.startHandshake();
        }
        return seen.get();
    }
}
