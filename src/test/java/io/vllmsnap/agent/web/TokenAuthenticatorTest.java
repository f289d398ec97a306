package io.vllmsnap.agent.web;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.vllmsnap.agent.web.TokenAuthenticator.Verdict;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;

import static io.vllmsnap.agent.web.TestTokens.AGENT_AUDIENCE;
import static io.vllmsnap.agent.web.TestTokens.API_SERVER_AUDIENCE;
import static io.vllmsnap.agent.web.TestTokens.OPERATOR_USER;
import static io.vllmsnap.agent.web.TestTokens.OTHER_USER;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Who the agent lets in (issue 16, finding 1 and the junk-token flood): only a token of the operator's service
 * account made for the agent's audience; reviews are cached apart for approvals and refusals, and tokens that cannot
 * pass cost no review.
 */
class TokenAuthenticatorTest {

    KubernetesMockServer server;
    KubernetesClient client;
    final MutableClock clock = new MutableClock();
    final Instant inAnHour = Instant.now().plusSeconds(3600);

    @BeforeEach
    void setUp() {
        server = new KubernetesMockServer(false);
        server.init();
        client = server.createClient();
        TestTokens.answer(server);
    }

    @AfterEach
    void tearDown() {
        client.close();
        server.destroy();
    }

    TokenAuthenticator authenticator(int maxRefusals) {
        return new TokenAuthenticator(client, OPERATOR_USER, AGENT_AUDIENCE, Duration.ofSeconds(60), maxRefusals, clock);
    }

    /**
     * The operator's own API-server token (the credential main sent to every agent) is refused: its audience is the
     * API server's. So is a token whose claims name the agent's audience but which the API server issued for another.
     */
    @Test
    void aTokenOfAnotherAudienceIsRefused() {
        TokenAuthenticator auth = authenticator(1024);
        String apiToken = TestTokens.issue(OPERATOR_USER, API_SERVER_AUDIENCE, inAnHour);
        String agentToken = TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);
        String relabelled = TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);

        assertThat(auth.check(apiToken).verdict()).isEqualTo(Verdict.MALFORMED);
        assertThat(auth.check(relabelled).verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
        assertThat(auth.check(agentToken).verdict()).isEqualTo(Verdict.ALLOWED);
        assertThat(auth.reviews()).as("the API-server token was refused by its claims alone").isEqualTo(2);
    }

    @Test
    void anApiServerThatDoesNotConfirmTheAudienceApprovesNothing() {
        KubernetesMockServer unaware = new KubernetesMockServer(false);
        unaware.init();
        unaware.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(200, request ->
                "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,"
                        + "\"user\":{\"username\":\"" + OPERATOR_USER + "\",\"extra\":{\"" + TokenAuthenticator.POD_NAME_EXTRA
                        + "\":[\"vllmsnap-operator-0\"]}}}}").always();
        try (KubernetesClient unawareClient = unaware.createClient()) {
            TokenAuthenticator auth = new TokenAuthenticator(unawareClient, OPERATOR_USER, AGENT_AUDIENCE, Duration.ofSeconds(60), 16, clock);
            TokenAuthenticator.Decision d = auth.check(TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, inAnHour));
            assertThat(d.verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
            assertThat(d.why()).contains("did not confirm audience");
        } finally {
            unaware.destroy();
        }
    }

    /** A token of the operator's account made by hand (kubectl create token) is bound to no pod: refused. */
    @Test
    void aTokenNotBoundToAPodIsRefused() {
        TokenAuthenticator auth = authenticator(1024);
        TokenAuthenticator.Decision d = auth.check(TestTokens.issueUnbound(OPERATOR_USER, AGENT_AUDIENCE, inAnHour));
        assertThat(d.verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
        assertThat(d.why()).contains("not bound to a pod");
    }

    @Test
    void onlyTheOperatorsIdentityIsAllowed() {
        TokenAuthenticator auth = authenticator(1024);
        // claims say so: refused without asking
        assertThat(auth.check(TestTokens.issue(OTHER_USER, AGENT_AUDIENCE, inAnHour)).verdict()).isEqualTo(Verdict.FORBIDDEN);
        assertThat(auth.reviews()).isZero();
        // claims lie (say operator), the API server knows better
        String lying = TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);
        assertThat(auth.check(lying).verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
    }

    @Test
    void malformedTokensAreRefusedWithoutAReview() {
        TokenAuthenticator auth = authenticator(1024);
        for (String bad : new String[] {"operator-token", "a.b.c", "x".repeat(40), TestTokens.junk(), "e30.e30.e30e30e30e30e30e30e30e30e30",
                TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, Instant.now().minusSeconds(5)), "a".repeat(9000) + ".b.c"}) {
            assertThat(auth.check(bad).verdict()).as(bad.substring(0, Math.min(40, bad.length()))).isEqualTo(Verdict.MALFORMED);
        }
        assertThat(auth.reviews()).isZero();
        assertThat(server.getRequestCount()).isZero();
    }

    /**
     * 1,100 junk tokens (more than main's whole cache of 1,024, which they used to empty) cost no review and leave
     * the operator's approval in place; 1,100 well-formed forgeries cost one review each at most, once, and do not
     * push the approval out of its cache either, even with a refusal cache far smaller than the flood.
     */
    @Test
    void aJunkFloodLeavesTheOperatorsApprovalAndCostsNoReviewEach() {
        TokenAuthenticator auth = authenticator(100);
        String operator = TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);
        assertThat(auth.check(operator).verdict()).isEqualTo(Verdict.ALLOWED);
        assertThat(auth.reviews()).isEqualTo(1);

        for (int i = 0; i < 1100; i++) {
            assertThat(auth.check(TestTokens.junk()).verdict()).isEqualTo(Verdict.MALFORMED);
        }
        assertThat(auth.reviews()).as("junk costs no TokenReview").isEqualTo(1);
        assertThat(auth.approved(operator)).isTrue();

        for (int i = 0; i < 1100; i++) {
            assertThat(auth.check(TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, inAnHour)).verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
        }
        assertThat(auth.approved(operator)).as("refusals never evict the approval").isTrue();
        long before = auth.reviews();
        assertThat(auth.check(operator).verdict()).isEqualTo(Verdict.ALLOWED);
        assertThat(auth.reviews()).isEqualTo(before);
    }

    @Test
    void answersAreCachedForTheTtlAndNeverPastTheTokensExpiry() {
        TokenAuthenticator auth = authenticator(1024);
        String operator = TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);
        String forged = TestTokens.forged(OPERATOR_USER, AGENT_AUDIENCE, inAnHour);
        auth.check(operator);
        auth.check(operator);
        auth.check(forged);
        auth.check(forged);
        assertThat(auth.reviews()).isEqualTo(2);

        clock.now = clock.now.plusSeconds(61);
        assertThat(auth.check(operator).verdict()).isEqualTo(Verdict.ALLOWED);
        assertThat(auth.check(forged).verdict()).isEqualTo(Verdict.UNAUTHENTICATED);
        assertThat(auth.reviews()).isEqualTo(4);

        // a token about to expire is approved until its expiry only, not for the whole TTL
        String shortLived = TestTokens.issue(OPERATOR_USER, AGENT_AUDIENCE, clock.now.plusSeconds(10));
        assertThat(auth.check(shortLived).verdict()).isEqualTo(Verdict.ALLOWED);
        assertThat(auth.approved(shortLived)).isTrue();
        clock.now = clock.now.plusSeconds(20);
        assertThat(auth.approved(shortLived)).isFalse();
        assertThat(auth.check(shortLived).verdict()).isEqualTo(Verdict.MALFORMED);
    }

    static final class MutableClock extends Clock {
        Instant now = Instant.now();

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
