package io.vllmsnap.agent.web;

import io.vllmsnap.agent.InvalidIdException;
import io.vllmsnap.agent.api.AgentRejectedException;
import jakarta.ws.rs.WebApplicationException;
import jakarta.ws.rs.core.Response;
import org.jboss.logging.Logger;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/**
 * Turns every failure into the API's one error shape ({@link ApiError}): bad input 400, unknown image 404,
 * conflicts 409, incompatible node 422, what the HTTP layer refuses (unknown path, wrong method or media type)
 * with its own status, and anything unexpected 500 without internals.
 */
public class ErrorMappers {

    private static final Logger LOG = Logger.getLogger(ErrorMappers.class);

    @ServerExceptionMapper
    public Response invalidId(InvalidIdException e) {
        return AgentAccessFilter.error(Response.Status.BAD_REQUEST, "InvalidId", e.getMessage());
    }

    @ServerExceptionMapper
    public Response badBody(RequestBodies.BadBodyException e) {
        return AgentAccessFilter.error(Response.Status.BAD_REQUEST, e.reason(), e.getMessage());
    }

    @ServerExceptionMapper
    public Response rejected(AgentRejectedException e) {
        int status = switch (e.reason()) {
            case "ImageNotFound" -> 404;
            case "Incompatible" -> 422;
            default -> 409;
        };
        return AgentAccessFilter.error(status, e.reason(), e.getMessage());
    }

    /** What the HTTP layer refuses before or around a resource: kept as its status, in the API's shape. */
    @ServerExceptionMapper
    public Response http(WebApplicationException e) {
        int status = e.getResponse() == null ? 500 : e.getResponse().getStatus();
        Response.StatusType type = Response.Status.fromStatusCode(status);
        String reason = type == null ? "Http" + status : camelCase(type.getReasonPhrase());
        return AgentAccessFilter.error(status, reason, type == null ? "HTTP " + status : type.getReasonPhrase().toLowerCase());
    }

    @ServerExceptionMapper
    public Response unexpected(RuntimeException e) {
        LOG.errorf(e, "agent API call failed");
        return AgentAccessFilter.error(500, "InternalError", "the agent failed to answer; see its log");
    }

    private static String camelCase(String phrase) {
        StringBuilder sb = new StringBuilder();
        for (String word : phrase.split("[^A-Za-z0-9]+")) {
            if (!word.isEmpty()) {
                sb.append(Character.toUpperCase(word.charAt(0))).append(word.substring(1).toLowerCase());
            }
        }
        return sb.toString();
    }
}
