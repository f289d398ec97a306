package io.vllmsnap.agent.web;

import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.vertx.core.http.HttpServerRequest;
import io.vllmsnap.agent.AgentConfig;
import io.vllmsnap.agent.jobs.AgentMetrics;
import jakarta.inject.Inject;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

import java.time.Duration;
import java.util.Optional;

/**
 * Guards the agent's API port. Outside agent mode the API does not exist (404), so the operator's pods never serve
 * it. In agent mode every request on this port, whatever its path (health and metrics are served on the separate
 * management port), passes these checks in order, each refusal answered in the API's JSON error shape (bodies were
 * limited before, by {@link RequestSizeLimit}):
 * <ol>
 *   <li>a bearer token approved by a recent TokenReview lets it through at once;</li>
 *   <li>any other request is charged to its client address's budget (429 when spent), so junk cannot flood the
 *       API server with TokenReviews;</li>
 *   <li>the token is checked ({@link TokenAuthenticator}): 401 without a valid token for this agent's audience, 403
 *       for another identity, 503 when the API server cannot be asked.</li>
 * </ol>
 * Every refusal is counted by reason.
 */
public class AgentAccessFilter {

    private static final Logger LOG = Logger.getLogger(AgentAccessFilter.class);
    private static final String BEARER = "Bearer ";

    @Inject
    AgentConfig config;
    @Inject
    TokenAuthenticator authenticator;
    @Inject
    ClientRateLimiter limiter;
    @Inject
    AgentMetrics metrics;

    @ServerRequestFilter(preMatching = true)
    public Uni<Response> guard(ContainerRequestContext request, HttpServerRequest connection) {
        if (!config.enabled()) {
            String path = request.getUriInfo().getPath();
            boolean api = path.equals(AgentResource.ROOT) || path.startsWith(AgentResource.ROOT + "/");
            return Uni.createFrom().item(api ? error(Response.Status.NOT_FOUND, "NotAgentMode", "this server does not run in agent mode") : null);
        }
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        String token = header != null && header.regionMatches(true, 0, BEARER, 0, BEARER.length())
                ? header.substring(BEARER.length()).trim() : null;
        if (token != null && authenticator.approved(token)) {
            return Uni.createFrom().nullItem();
        }
        String client = connection.remoteAddress() == null ? "unknown" : connection.remoteAddress().hostAddress();
        Optional<Duration> wait = limiter.acquire(client);
        if (wait.isPresent()) {
            metrics.authFailure("rate-limited");
            long seconds = Math.max(1, (wait.get().toMillis() + 999) / 1000);
            return Uni.createFrom().item(Response.fromResponse(error(429, "TooManyRequests",
                    "too many requests without an approved token from " + client + "; retry in " + seconds + " s"))
                    .header(HttpHeaders.RETRY_AFTER, seconds).build());
        }
        if (token == null || token.isEmpty()) {
            metrics.authFailure("missing-token");
            return Uni.createFrom().item(unauthorized("a bearer token is required"));
        }
        // TokenReview is a blocking call to the API server: keep it off the event loop.
        return Uni.createFrom().item(() -> decide(token)).runSubscriptionOn(Infrastructure.getDefaultWorkerPool());
    }

    private Response decide(String token) {
        TokenAuthenticator.Decision decision;
        try {
            decision = authenticator.check(token);
        } catch (RuntimeException e) {
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            LOG.warnf("TokenReview failed: %s (%s)", e.getMessage(), root);
            metrics.authFailure("review-error");
            return error(Response.Status.SERVICE_UNAVAILABLE, "TokenReviewFailed", "cannot check the token with the API server");
        }
        return switch (decision.verdict()) {
            case ALLOWED -> null;
            case MALFORMED -> {
                metrics.authFailure("malformed-token");
                yield unauthorized(decision.why());
            }
            case UNAUTHENTICATED -> {
                metrics.authFailure("invalid-token");
                yield unauthorized(decision.why());
            }
            case FORBIDDEN -> {
                metrics.authFailure("forbidden-identity");
                yield error(Response.Status.FORBIDDEN, "Forbidden", "only the operator's service account may call the agent");
            }
        };
    }

    private static Response unauthorized(String message) {
        return Response.fromResponse(error(Response.Status.UNAUTHORIZED, "Unauthorized", message))
                .header(HttpHeaders.WWW_AUTHENTICATE, "Bearer").build();
    }

    static Response error(Response.Status status, String reason, String message) {
        return error(status.getStatusCode(), reason, message);
    }

    static Response error(int status, String reason, String message) {
        return Response.status(status).type(MediaType.APPLICATION_JSON).entity(new ApiError(reason, message)).build();
    }
}
