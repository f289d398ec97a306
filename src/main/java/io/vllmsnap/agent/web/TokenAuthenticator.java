package io.vllmsnap.agent.web;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decides whether a bearer token belongs to the one identity allowed to call the agent, asking the API server
 * (TokenReview) and remembering the answer for a short while so a busy operator does not cost a review per call.
 * Tokens are kept only as SHA-256 digests.
 */
public class TokenAuthenticator {

    public enum Verdict { ALLOWED, UNAUTHENTICATED, FORBIDDEN }

    private static final int MAX_CACHED = 1024;
    private final KubernetesClient client;
    private final String allowedUser;
    private final Duration ttl;
    private final Clock clock;
    private final Map<String, Cached> cache = new ConcurrentHashMap<>();

    public TokenAuthenticator(KubernetesClient client, String allowedUser, Duration ttl, Clock clock) {
        this.client = client;
        this.allowedUser = allowedUser;
        this.ttl = ttl;
        this.clock = clock;
    }

    /** @throws RuntimeException when the API server cannot be asked (the caller answers 503) */
    public Verdict check(String token) {
        if (token == null || token.isBlank()) {
            return Verdict.UNAUTHENTICATED;
        }
        String key = digest(token);
        Instant now = clock.instant();
        Cached cached = cache.get(key);
        if (cached != null && cached.until.isAfter(now)) {
            return cached.verdict;
        }
        Verdict verdict = review(token);
        if (cache.size() >= MAX_CACHED) {
            cache.values().removeIf(c -> !c.until.isAfter(now));
            if (cache.size() >= MAX_CACHED) {
                cache.clear();
            }
        }
        cache.put(key, new Cached(verdict, now.plus(ttl)));
        return verdict;
    }

    private Verdict review(String token) {
        TokenReview review = new TokenReviewBuilder().withNewSpec().withToken(token).endSpec().build();
        TokenReview answer = client.authentication().v1().tokenReviews().create(review);
        if (answer.getStatus() == null || !Boolean.TRUE.equals(answer.getStatus().getAuthenticated())
                || answer.getStatus().getUser() == null) {
            return Verdict.UNAUTHENTICATED;
        }
        return allowedUser.equals(answer.getStatus().getUser().getUsername()) ? Verdict.ALLOWED : Verdict.FORBIDDEN;
    }

    private static String digest(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private record Cached(Verdict verdict, Instant until) {
    }
}
