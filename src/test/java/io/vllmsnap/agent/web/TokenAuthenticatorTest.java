package io.vllmsnap.agent.web;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;

import static org.assertj.core.api.Assertions.assertThat;

/** TokenReview answers are remembered for the configured time only, per token. */
class TokenAuthenticatorTest {

    static final String OPERATOR = "system:serviceaccount:vllmsnap-system:vllmsnap-operator";
    KubernetesMockServer server;
    KubernetesClient client;
    MutableClock clock = new MutableClock();

    @BeforeEach
    void setUp() {
        server = new KubernetesMockServer(false);
        server.init();
        client = server.createClient();
        server.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(200, request -> {
            String body = request.getUtf8Body(); // reading the body consumes it: once
            boolean operator = body.contains("\"operator-token\"");
            boolean foreign = body.contains("\"foreign-token\"");
            String user = operator ? OPERATOR : "system:serviceaccount:default:default";
            return "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"status\":{\"authenticated\":"
                    + (operator || foreign) + ",\"user\":{\"username\":\"" + user + "\"}}}";
        }).always();
    }

    @Test
    void answersAreCachedForTheTtlThenCheckedAgain() {
        TokenAuthenticator auth = new TokenAuthenticator(client, OPERATOR, Duration.ofSeconds(60), clock);

        assertThat(auth.check("operator-token")).isEqualTo(TokenAuthenticator.Verdict.ALLOWED);
        assertThat(auth.check("operator-token")).isEqualTo(TokenAuthenticator.Verdict.ALLOWED);
        assertThat(auth.check("foreign-token")).isEqualTo(TokenAuthenticator.Verdict.FORBIDDEN);
        assertThat(auth.check("garbage")).isEqualTo(TokenAuthenticator.Verdict.UNAUTHENTICATED);
        assertThat(auth.check("")).isEqualTo(TokenAuthenticator.Verdict.UNAUTHENTICATED);
        assertThat(server.getRequestCount()).isEqualTo(3);

        clock.now = clock.now.plusSeconds(61);
        assertThat(auth.check("operator-token")).isEqualTo(TokenAuthenticator.Verdict.ALLOWED);
        assertThat(server.getRequestCount()).isEqualTo(4);
    }

    @AfterEach
    void tearDown() {
        client.close();
        server.destroy();
    }

    static final class MutableClock extends Clock {
        Instant now = Instant.parse("2026-01-01T00:00:00Z");

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }
}
