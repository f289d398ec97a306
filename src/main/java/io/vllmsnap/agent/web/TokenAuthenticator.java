package io.vllmsnap.agent.web;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.client.KubernetesClient;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Decides whether a bearer token belongs to the one identity allowed to call the agent: a service-account token
 * bound to this agent's audience (never a token meant for the API server) and to a pod, of the operator's service
 * account.
 *
 * <p>Obviously hopeless tokens are refused before any review ({@link TokenPrecheck}). The rest are checked with a
 * TokenReview that names the audience, and the answer must confirm it. Answers are cached, keyed by the token's
 * SHA-256 digest (tokens themselves are never kept): approvals and refusals in two separate bounded caches, so no
 * number of refused tokens can push the operator's approval out. An approval lasts the cache TTL or until the token
 * expires, whichever comes first.
 */
public class TokenAuthenticator {

    public enum Verdict { ALLOWED, UNAUTHENTICATED, MALFORMED, FORBIDDEN }

    /** A verdict and why, for the log and the error message. */
    public record Decision(Verdict verdict, String why) {
    }

    /** Set by the API server on tokens bound to a pod (projected service-account tokens). */
    static final String POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
    /** Approvals: one identity may pass, so a handful of tokens at most (rotation makes a new one now and then). */
    private static final int MAX_APPROVALS = 64;

    private final KubernetesClient client;
    private final String allowedUser;
    private final String audience;
    private final Duration ttl;
    private final Clock clock;
    private final TokenPrecheck precheck;
    private final Cache<String, Instant> approvals;
    private final Cache<String, Decision> refusals;
    private final AtomicLong reviews = new AtomicLong();

    /**
     * @param allowedUser the TokenReview user name allowed in, {@code system:serviceaccount:<ns>:<name>}
     * @param audience    the audience the token must be bound to; the TokenReview asks for it
     * @param maxRefusals how many refused tokens are remembered (least recently used go first)
     */
    public TokenAuthenticator(KubernetesClient client, String allowedUser, String audience, Duration ttl, int maxRefusals,
            Clock clock) {
        this.client = client;
        this.allowedUser = allowedUser;
        this.audience = audience;
        this.ttl = ttl;
        this.clock = clock;
        this.precheck = new TokenPrecheck(audience, allowedUser);
        // Evictions run on the calling thread, so the size bound holds at every moment, not eventually.
        this.approvals = Caffeine.newBuilder().maximumSize(MAX_APPROVALS).expireAfterWrite(ttl)
                .ticker(this::nanos).executor(Runnable::run).build();
        this.refusals = Caffeine.newBuilder().maximumSize(maxRefusals).expireAfterWrite(ttl)
                .ticker(this::nanos).executor(Runnable::run).build();
    }

    /** True when this token was approved by a review that is still trusted: no review and no request limit needed. */
    public boolean approved(String token) {
        if (token == null || token.length() > TokenPrecheck.MAX_LENGTH) {
            return false;
        }
        String key = digest(token);
        Instant until = approvals.getIfPresent(key);
        if (until == null) {
            return false;
        }
        if (!until.isAfter(clock.instant())) {
            approvals.invalidate(key); // the token itself expired before the cache entry did
            return false;
        }
        return true;
    }

    /**
     * Decides, from the caches, from the token's shape or with a TokenReview.
     *
     * @throws RuntimeException when the API server cannot be asked (the caller answers 503; nothing is cached)
     */
    public Decision check(String token) {
        if (token == null || token.isBlank()) {
            return new Decision(Verdict.UNAUTHENTICATED, "no token");
        }
        if (approved(token)) {
            return new Decision(Verdict.ALLOWED, null);
        }
        Instant now = clock.instant();
        TokenPrecheck.Outcome shape = precheck.check(token, now);
        if (!shape.reviewable()) {
            return new Decision(shape.verdict(), "the token " + shape.why());
        }
        String key = digest(token);
        Decision known = refusals.getIfPresent(key);
        if (known != null) {
            return known;
        }
        Decision decision = review(token);
        if (decision.verdict() == Verdict.ALLOWED) {
            Instant until = now.plus(ttl);
            approvals.put(key, shape.expiresAt().isBefore(until) ? shape.expiresAt() : until);
        } else {
            refusals.put(key, decision);
        }
        return decision;
    }

    /** TokenReviews asked so far (a refusal flood must not cost one each). */
    public long reviews() {
        return reviews.get();
    }

    private Decision review(String token) {
        reviews.incrementAndGet();
        TokenReview review = new TokenReviewBuilder().withNewSpec().withToken(token).withAudiences(audience).endSpec().build();
        TokenReviewStatus status = client.authentication().v1().tokenReviews().create(review).getStatus();
        if (status == null || !Boolean.TRUE.equals(status.getAuthenticated()) || status.getUser() == null) {
            return new Decision(Verdict.UNAUTHENTICATED, "the token is not valid for audience " + audience);
        }
        // An API server that ignores audiences would approve any valid token: only a confirmed audience counts.
        List<String> confirmed = status.getAudiences();
        if (confirmed == null || !confirmed.contains(audience)) {
            return new Decision(Verdict.UNAUTHENTICATED, "the API server did not confirm audience " + audience);
        }
        if (!allowedUser.equals(status.getUser().getUsername())) {
            return new Decision(Verdict.FORBIDDEN, "the token belongs to " + status.getUser().getUsername());
        }
        // Projected tokens are bound to the pod they were mounted into and die with it; a token made by hand
        // (kubectl create token) is not, and is not what the operator sends.
        Map<String, List<String>> extra = status.getUser().getExtra();
        if (extra == null || extra.getOrDefault(POD_NAME_EXTRA, List.of()).isEmpty()) {
            return new Decision(Verdict.UNAUTHENTICATED, "the token is not bound to a pod");
        }
        return new Decision(Verdict.ALLOWED, null);
    }

    private long nanos() {
        Instant now = clock.instant();
        return TimeUnit.SECONDS.toNanos(now.getEpochSecond()) + now.getNano();
    }

    private static String digest(String token) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
