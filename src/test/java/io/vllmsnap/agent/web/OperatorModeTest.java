package io.vllmsnap.agent.web;

import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.TestProfile;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import static org.assertj.core.api.Assertions.assertThat;

/** Outside agent mode every agent endpoint is 404, even for the operator's token; metrics are still served (management port). */
@QuarkusTest
@TestProfile(OperatorModeProfile.class)
@WithKubernetesTestServer
class OperatorModeTest {

    @KubernetesTestServer
    KubernetesServer server;

    @TestHTTPResource("/")
    URI base;

    @TestHTTPResource(value = "/", management = true)
    URI management;

    @Test
    void agentApiIsNotServed() throws Exception {
        AgentApiTest.answerTokenReviews(server);
        HttpClient http = HttpClient.newHttpClient();
        for (String path : new String[] {"api/v1/capabilities", "api/v1/images?namespace=team-a", "api/v1/jobs/snap-1"}) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(path))
                    .header("Authorization", "Bearer " + AgentApiTest.OPERATOR_TOKEN).GET().build(), HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(path).isEqualTo(404);
        }
        HttpResponse<String> post = http.send(HttpRequest.newBuilder(base.resolve("api/v1/jobs/snapshot"))
                .header("Authorization", "Bearer " + AgentApiTest.OPERATOR_TOKEN).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(post.statusCode()).isEqualTo(404);
        // metrics and health are served on the management port, plain HTTP in operator mode
        for (String path : new String[] {"metrics", "health/live"}) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(management.resolve(path)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as(path).isEqualTo(200);
        }
    }
}
