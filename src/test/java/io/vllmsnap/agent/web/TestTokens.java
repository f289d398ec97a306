package io.vllmsnap.agent.web;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Service-account tokens as a Kubernetes API server issues them (JWTs with an audience, a subject and an expiry,
 * signed with a key only the API server knows), and that API server's TokenReview: a token is authenticated when
 * it was issued here, has not expired and shares an audience with the review's {@code spec.audiences}, the server's
 * own audience when the review names none. {@code status.audiences} is that intersection. Answered through the
 * Fabric8 mock server; every review is counted.
 */
public final class TestTokens {

    /** The API server's own audience: what a pod's default service-account token is made for. */
    public static final String API_SERVER_AUDIENCE = "https://kubernetes.default.svc.cluster.local";
    public static final String AGENT_AUDIENCE = "vllmsnap-agent";
    public static final String OPERATOR_USER = "system:serviceaccount:vllmsnap-system:vllmsnap-operator";
    public static final String OTHER_USER = "system:serviceaccount:default:default";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();
    private static final Map<String, Issued> ISSUED = new ConcurrentHashMap<>();
    private static final AtomicInteger REVIEWS = new AtomicInteger();

    private record Issued(String user, List<String> audiences, Instant expiresAt, String pod) {
    }

    private TestTokens() {
    }

    /**
     * A token the API server issued into a pod's projected volume (a TokenReview authenticates it for its audiences
     * until it expires, and reports the pod it is bound to).
     */
    public static String issue(String user, String audience, Instant expiresAt) {
        String token = shaped(user, audience, expiresAt);
        ISSUED.put(token, new Issued(user, List.of(audience), expiresAt, "vllmsnap-operator-7c9f8-x2x4l"));
        return token;
    }

    /** A token made by hand (kubectl create token): valid, but bound to no pod. */
    public static String issueUnbound(String user, String audience, Instant expiresAt) {
        String token = shaped(user, audience, expiresAt);
        ISSUED.put(token, new Issued(user, List.of(audience), expiresAt, null));
        return token;
    }

    /** A token of the right shape and claims that the API server never issued (a forgery: its signature is junk). */
    public static String forged(String user, String audience, Instant expiresAt) {
        return shaped(user, audience, expiresAt);
    }

    private static String shaped(String user, String audience, Instant expiresAt) {
        try {
            byte[] header = JSON.writeValueAsBytes(Map.of("alg", "RS256", "kid", "test-key"));
            byte[] claims = JSON.writeValueAsBytes(Map.of("aud", List.of(audience), "sub", user, "exp", expiresAt.getEpochSecond(),
                    "iat", Instant.now().getEpochSecond(), "iss", API_SERVER_AUDIENCE, "jti", Long.toHexString(RANDOM.nextLong())));
            byte[] signature = new byte[256];
            RANDOM.nextBytes(signature);
            return B64.encodeToString(header) + "." + B64.encodeToString(claims) + "." + B64.encodeToString(signature);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Random bytes in a bearer header: what a flood of junk looks like. */
    public static String junk() {
        byte[] bytes = new byte[24 + RANDOM.nextInt(40)];
        RANDOM.nextBytes(bytes);
        return B64.encodeToString(bytes);
    }

    public static int reviews() {
        return REVIEWS.get();
    }

    public static void answerReviews(KubernetesServer server) {
        answer(server.getKubernetesMockServer());
    }

    public static void answer(KubernetesMockServer server) {
        server.expect().post().withPath("/apis/authentication.k8s.io/v1/tokenreviews").andReply(200, request -> {
            REVIEWS.incrementAndGet();
            try {
                var spec = JSON.readTree(request.getUtf8Body()).path("spec");
                Issued issued = ISSUED.get(spec.path("token").asText());
                List<String> asked = new ArrayList<>();
                spec.path("audiences").forEach(a -> asked.add(a.asText()));
                if (asked.isEmpty()) {
                    asked.add(API_SERVER_AUDIENCE);
                }
                String status;
                if (issued == null || !issued.expiresAt.isAfter(Instant.now())
                        || asked.stream().noneMatch(issued.audiences::contains)) {
                    status = "{\"authenticated\":false,\"error\":\"invalid bearer token\"}";
                } else {
                    List<String> both = asked.stream().filter(issued.audiences::contains).toList();
                    String extra = issued.pod == null ? "" : ",\"extra\":{\"authentication.kubernetes.io/pod-name\":[\"" + issued.pod + "\"]}";
                    status = "{\"authenticated\":true,\"audiences\":" + JSON.writeValueAsString(both)
                            + ",\"user\":{\"username\":\"" + issued.user + "\"" + extra + "}}";
                }
                return "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"status\":" + status + "}";
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }).always();
    }
}
