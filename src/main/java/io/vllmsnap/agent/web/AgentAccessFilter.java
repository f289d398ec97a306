package io.vllmsnap.agent.web;

import io.smallrye.mutiny.Uni;
import io.smallrye.mutiny.infrastructure.Infrastructure;
import io.vllmsnap.agent.AgentConfig;
import io.vllmsnap.agent.jobs.AgentMetrics;
import jakarta.inject.Inject;
import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.core.HttpHeaders;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerRequestFilter;

/**
 * Guards the agent API. Outside agent mode the API does not exist (404), so the operator's pods never serve it.
 * In agent mode every call needs the operator's service-account token: 401 without a valid token, 403 for any other
 * identity, each counted by reason.
 */
public class AgentAccessFilter {

    private static final Logger LOG = Logger.getLogger(AgentAccessFilter.class);
    private static final String BEARER = "Bearer ";

    @Inject
    AgentConfig config;
    @Inject
    TokenAuthenticator authenticator;
    @Inject
    AgentMetrics metrics;

    @ServerRequestFilter(preMatching = true)
    public Uni<Response> guard(ContainerRequestContext request) {
        String path = request.getUriInfo().getPath();
        if (!path.equals(AgentResource.ROOT) && !path.startsWith(AgentResource.ROOT + "/")) {
            return Uni.createFrom().nullItem();
        }
        if (!config.enabled()) {
            return Uni.createFrom().item(error(Response.Status.NOT_FOUND, "NotAgentMode", "this server does not run in agent mode"));
        }
        String header = request.getHeaderString(HttpHeaders.AUTHORIZATION);
        if (header == null || !header.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
            metrics.authFailure("missing-token");
            return Uni.createFrom().item(unauthorized("a bearer token is required"));
        }
        String token = header.substring(BEARER.length()).trim();
        // TokenReview is a blocking call to the API server: keep it off the event loop.
        return Uni.createFrom().item(() -> decide(token)).runSubscriptionOn(Infrastructure.getDefaultWorkerPool());
    }

    private Response decide(String token) {
        TokenAuthenticator.Verdict verdict;
        try {
            verdict = authenticator.check(token);
        } catch (RuntimeException e) {
            Throwable root = e;
            while (root.getCause() != null) {
                root = root.getCause();
            }
            LOG.warnf("TokenReview failed: %s (%s)", e.getMessage(), root);
            metrics.authFailure("review-error");
            return error(Response.Status.SERVICE_UNAVAILABLE, "TokenReviewFailed", "cannot check the token with the API server");
        }
        return switch (verdict) {
            case ALLOWED -> null;
            case UNAUTHENTICATED -> {
                metrics.authFailure("invalid-token");
                yield unauthorized("the token is not valid");
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
