package io.vllmsnap.agent.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.time.Instant;
import java.util.Base64;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What can be told about a bearer token without asking the API server. A Kubernetes service-account token is a
 * signed JWT; one that is not shaped like one, names another audience or subject, or has expired cannot pass a
 * TokenReview, so it is refused here and costs the API server nothing. Nothing here is trusted: the signature is
 * not checked, and a token that passes still goes to TokenReview, which alone decides.
 */
final class TokenPrecheck {

    /** Why a token was refused without a review; {@code null} fields mean it may be reviewed. */
    record Outcome(TokenAuthenticator.Verdict verdict, String why, Instant expiresAt) {
        boolean reviewable() {
            return verdict == null;
        }
    }

    /** Projected tokens are about 1 KiB; the API server refuses far larger ones too. */
    static final int MAX_LENGTH = 8192;
    private static final int MIN_LENGTH = 32;
    private static final Pattern JWT = Pattern.compile("[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+");
    /** Signature algorithms the API server signs service-account tokens with. */
    private static final Set<String> ALGORITHMS = Set.of("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String audience;
    private final String subject;

    /**
     * @param audience the audience a token for this agent must carry
     * @param subject  the one identity allowed ({@code system:serviceaccount:<ns>:<name>}), a token's {@code sub}
     */
    TokenPrecheck(String audience, String subject) {
        this.audience = audience;
        this.subject = subject;
    }

    Outcome check(String token, Instant now) {
        if (token.length() < MIN_LENGTH || token.length() > MAX_LENGTH || !JWT.matcher(token).matches()) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "not a JSON web token");
        }
        String[] parts = token.split("\\.");
        JsonNode header = decode(parts[0]);
        JsonNode claims = decode(parts[1]);
        if (header == null || claims == null || !header.isObject() || !claims.isObject()) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "not a JSON web token");
        }
        if (!ALGORITHMS.contains(header.path("alg").asText())) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "not signed as service-account tokens are");
        }
        if (!hasAudience(claims.get("aud"))) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "not issued for audience " + audience);
        }
        JsonNode exp = claims.get("exp");
        if (exp == null || !exp.canConvertToLong()) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "has no expiry");
        }
        Instant expiresAt = Instant.ofEpochSecond(exp.asLong());
        if (!expiresAt.isAfter(now)) {
            return refused(TokenAuthenticator.Verdict.MALFORMED, "has expired");
        }
        if (!subject.equals(claims.path("sub").asText())) {
            return refused(TokenAuthenticator.Verdict.FORBIDDEN, "belongs to another identity");
        }
        return new Outcome(null, null, expiresAt);
    }

    private boolean hasAudience(JsonNode aud) {
        if (aud == null) {
            return false;
        }
        if (aud.isTextual()) {
            return audience.equals(aud.asText());
        }
        if (aud.isArray()) {
            for (JsonNode a : aud) {
                if (audience.equals(a.asText())) {
                    return true;
                }
            }
        }
        return false;
    }

    private static Outcome refused(TokenAuthenticator.Verdict verdict, String why) {
        return new Outcome(verdict, why, null);
    }

    private static JsonNode decode(String part) {
        try {
            return JSON.readTree(Base64.getUrlDecoder().decode(part));
        } catch (IllegalArgumentException | IOException e) {
            return null;
        }
    }
}
